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
data_root = 'data/synthetic/'
world_version = 'v1.0-mini'
ida_aug_conf = dict(_base_.ida_aug_conf, resize_lim=(0.32, 0.36), final_dim=(96, 256), H=450, W=800)


# The base's pipelines hold the nuScenes ida_aug_conf (mmengine substitutes it when the base
# is read), so overriding ida_aug_conf alone would not reach them: they are rebuilt here
# step by step. Functions are not config keys (mmengine drops them).
def at_world_size(step):
    """A step of the nuScenes pipelines at this image size, collecting the contract's meta keys."""
    if step['type'] == 'ResizeCropFlipRotImage':
        return dict(step, data_aug_conf=ida_aug_conf)
    if step['type'] == 'Collect3D':
        return dict(step, meta_keys=('img_shape', 'pad_shape', 'scene_token'))
    if 'transforms' in step:
        return dict(step, transforms=[at_world_size(inner) for inner in step['transforms']])
    return step


# The nuScenes splits' streaming keys (queue_length, collect_keys, ...) are not the world's:
# each split is replaced (_delete_), so it is written whole.
def world_split(split, **options):
    """A split of the generated world in the nuScenes info layout."""
    return dict(_delete_=True, type=_base_.dataset_type, data_root=data_root,
                ann_file=f'{data_root}nuscenes2d_temporal_infos_{split}.pkl', version=world_version,
                classes=_base_.class_names, modality=_base_.input_modality, **options)


train_pipeline = [at_world_size(step) for step in _base_.train_pipeline]
test_pipeline = [at_world_size(step) for step in _base_.test_pipeline]
data = dict(
    samples_per_gpu=batch_size,
    workers_per_gpu=1,
    train=world_split('train', seq_split_num=2, seq_mode=True, pipeline=train_pipeline,
                      test_mode=False, use_valid_flag=True, box_type_3d='LiDAR'),
    val=world_split('val', pipeline=test_pipeline, test_mode=True),
    test=world_split('val', pipeline=test_pipeline, test_mode=True))

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
                # a list replaces the base's whole (mmengine merges dicts, not list items)
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
