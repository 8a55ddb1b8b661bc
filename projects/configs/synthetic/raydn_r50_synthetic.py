# The synthetic teacher: RayDN with a ResNet-50 trained from scratch on the generated world
# (no download needed) at 6 x 96 x 256, sized for a 2-core CPU: 128-channel FPN and queries,
# 3 decoder layers, 100 + 32 propagated queries, 3 box-noise DN groups, a 64-channel YOLOX
# auxiliary head, batch 1 (about 1.4 s per iteration on 2 cores). Everything not set here is the nuScenes
# RayDN R50 config (projects/configs/RayDN/raydn_r50_704_bs2_seq_428q_nui_60e.py).
_base_ = ['../RayDN/raydn_r50_704_bs2_seq_428q_nui_60e.py']

embed_dims = 128
num_layers = 3
batch_size = 1
max_iters = 1000

# The generated world (tools/create_synthetic_nuscenes.py, v1.0-mini layout, 800x450 images)
# at 6 x 96 x 256: images resized by ~0.34 and the bottom 96 rows kept (the horizon and
# everything below it), the nuScenes crop (1600x900 -> 704x256) at about 0.36 of its size.
point_cloud_range = _base_.point_cloud_range
class_names = _base_.class_names
img_norm_cfg = _base_.img_norm_cfg
collect_keys = _base_.collect_keys
dataset_type = _base_.dataset_type
data_root = 'data/synthetic/'
world_version = 'v1.0-mini'
input_modality = _base_.input_modality

ida_aug_conf = {
    'resize_lim': (0.32, 0.36),
    'final_dim': (96, 256),
    'bot_pct_lim': (0.0, 0.0),
    'rot_lim': (0.0, 0.0),
    'H': 450,
    'W': 800,
    'rand_flip': True,
}
train_pipeline = [
    dict(type='LoadMultiViewImageFromFiles', to_float32=True),
    dict(type='LoadAnnotations3D', with_bbox_3d=True, with_label_3d=True, with_bbox=True,
         with_label=True, with_bbox_depth=True),
    dict(type='ObjectRangeFilter', point_cloud_range=point_cloud_range),
    dict(type='ObjectNameFilter', classes=class_names),
    dict(type='ResizeCropFlipRotImage', data_aug_conf=ida_aug_conf, training=True),
    dict(type='GlobalRotScaleTransImage', rot_range=[-0.3925, 0.3925],
         translation_std=[0, 0, 0], scale_ratio_range=[0.95, 1.05], reverse_angle=True,
         training=True),
    dict(type='NormalizeMultiviewImage', **img_norm_cfg),
    dict(type='PadMultiViewImage', size_divisor=32),
    dict(type='PETRFormatBundle3D', class_names=class_names,
         collect_keys=collect_keys + ['prev_exists']),
    dict(type='Collect3D',
         keys=['gt_bboxes_3d', 'gt_labels_3d', 'img', 'gt_bboxes', 'gt_labels', 'centers2d',
               'depths', 'prev_exists'] + collect_keys,
         meta_keys=('img_shape', 'pad_shape', 'scene_token')),
]
test_pipeline = [
    dict(type='LoadMultiViewImageFromFiles', to_float32=True),
    dict(type='ResizeCropFlipRotImage', data_aug_conf=ida_aug_conf, training=False),
    dict(type='NormalizeMultiviewImage', **img_norm_cfg),
    dict(type='PadMultiViewImage', size_divisor=32),
    dict(type='MultiScaleFlipAug3D', img_scale=(1333, 800), pts_scale_ratio=1, flip=False,
         transforms=[
             dict(type='PETRFormatBundle3D', collect_keys=collect_keys,
                  class_names=class_names, with_label=False),
             dict(type='Collect3D', keys=['img'] + collect_keys,
                  meta_keys=('img_shape', 'pad_shape', 'scene_token')),
         ]),
]
data = dict(
    samples_per_gpu=batch_size,
    workers_per_gpu=1,
    train=dict(
        _delete_=True,
        type=dataset_type,
        data_root=data_root,
        ann_file=data_root + 'nuscenes2d_temporal_infos_train.pkl',
        version=world_version,
        seq_split_num=2,
        seq_mode=True,
        pipeline=train_pipeline,
        classes=class_names,
        modality=input_modality,
        test_mode=False,
        use_valid_flag=True,
        box_type_3d='LiDAR'),
    val=dict(
        _delete_=True,
        type=dataset_type,
        data_root=data_root,
        ann_file=data_root + 'nuscenes2d_temporal_infos_val.pkl',
        version=world_version,
        pipeline=test_pipeline,
        classes=class_names,
        modality=input_modality,
        test_mode=True),
    test=dict(
        _delete_=True,
        type=dataset_type,
        data_root=data_root,
        ann_file=data_root + 'nuscenes2d_temporal_infos_val.pkl',
        version=world_version,
        pipeline=test_pipeline,
        classes=class_names,
        modality=input_modality,
        test_mode=True),
    shuffler_sampler=dict(type='InfiniteGroupEachSampleInBatchSampler'),
    nonshuffler_sampler=dict(type='DistributedSampler'))

model = dict(
    img_backbone=dict(
        init_cfg=None,  # from scratch: nothing to download
        norm_cfg=dict(type='BN2d', requires_grad=True),
        norm_eval=False,
        with_cp=False),
    img_neck=dict(out_channels=embed_dims),
    img_roi_head=dict(in_channels=embed_dims, feat_channels=64, stacked_convs=1),
    pts_bbox_head=dict(
        in_channels=embed_dims,
        embed_dims=embed_dims,
        num_query=100,
        memory_len=128,
        topk_proposals=32,
        num_propagated=32,
        scalar=3,
        transformer=dict(decoder=dict(
            embed_dims=embed_dims,
            num_layers=num_layers,
            transformerlayers=dict(
                with_cp=False,
                attn_cfgs=[
                    dict(type='MultiheadAttention', embed_dims=embed_dims, num_heads=4,
                         dropout=0.1),
                    dict(type='DeformableFeatureAggregationCuda', embed_dims=embed_dims,
                         num_groups=8, num_levels=4, num_cams=6, dropout=0.1, num_pts=13,
                         bias=2.),
                ],
                ffn_cfgs=dict(type='FFN', embed_dims=embed_dims, feedforward_channels=4 * embed_dims,
                              num_fcs=2, ffn_drop=0.0, act_cfg=dict(type='ReLU', inplace=True)),
            )))))

optimizer = dict(lr=5e-4, paramwise_cfg=dict(custom_keys={'img_backbone': dict(lr_mult=1.0)}))
optimizer_config = dict(_delete_=True, grad_clip=dict(max_norm=35, norm_type=2))
fp16 = None
lr_config = dict(warmup_iters=50)
runner = dict(type='IterBasedRunner', max_iters=max_iters)
checkpoint_config = dict(interval=250, max_keep_ckpts=2)
evaluation = dict(_delete_=True, interval=max_iters)
log_config = dict(interval=10)
load_from = None
load_from_strict = True  # a load_from given here is one of our own checkpoints: every key must match
