# A tiny RayDN for engine tests on the tiny generated world of tests/conftest.py (400x225
# images, 2 train + 1 val scenes of 4 samples): 64x176 inputs, 32 channels, 1 decoder layer.
# data_root / ann_file are set by the tests (--cfg-options).
_base_ = ['../../../projects/configs/synthetic/raydn_r18_synthetic.py']

embed_dims = 32
ida_aug_conf = {
    'resize_lim': (0.42, 0.46),
    'final_dim': (64, 176),
    'bot_pct_lim': (0.0, 0.0),
    'rot_lim': (0.0, 0.0),
    'H': 225,
    'W': 400,
    'rand_flip': True,
}
model = dict(
    img_backbone=dict(depth=18),
    img_neck=dict(out_channels=embed_dims),
    img_roi_head=dict(in_channels=embed_dims),
    pts_bbox_head=dict(
        in_channels=embed_dims,
        embed_dims=embed_dims,
        num_query=20,
        memory_len=16,
        topk_proposals=4,
        num_propagated=4,
        transformer=dict(decoder=dict(
            embed_dims=embed_dims,
            num_layers=1,
            transformerlayers=dict(
                attn_cfgs=[
                    dict(type='MultiheadAttention', embed_dims=embed_dims, num_heads=4,
                         dropout=0.1),
                    dict(type='DeformableFeatureAggregationCuda', embed_dims=embed_dims,
                         num_groups=4, num_levels=4, num_cams=6, dropout=0.1, num_pts=13,
                         bias=2.),
                ],
                ffn_cfgs=dict(type='FFN', embed_dims=embed_dims, feedforward_channels=64,
                              num_fcs=2, ffn_drop=0.0,
                              act_cfg=dict(type='ReLU', inplace=True)))))))
# Pipelines are resolved inside the base file, so the new image sizes need new pipelines.
point_cloud_range = [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]
class_names = ['car', 'truck', 'construction_vehicle', 'bus', 'trailer', 'barrier',
               'motorcycle', 'bicycle', 'pedestrian', 'traffic_cone']
img_norm_cfg = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)
collect_keys = ['lidar2img', 'intrinsics', 'extrinsics', 'timestamp', 'img_timestamp',
                'ego_pose', 'ego_pose_inv']
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
    dict(type='PETRFormatBundle3D', collect_keys=collect_keys,
         class_names=class_names, with_label=False),
    dict(type='Collect3D', keys=['img'] + collect_keys,
         meta_keys=('img_shape', 'pad_shape', 'scene_token')),
]
data = dict(
    samples_per_gpu=1,
    workers_per_gpu=0,
    train=dict(pipeline=train_pipeline),
    val=dict(pipeline=test_pipeline),
    test=dict(pipeline=test_pipeline),
)
runner = dict(type='IterBasedRunner', max_iters=6)
lr_config = dict(warmup_iters=2)
checkpoint_config = dict(interval=3, max_keep_ckpts=2)
evaluation = dict(interval=6)
log_config = dict(interval=1)
