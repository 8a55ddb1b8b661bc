# A RayDN detector shrunk for CPU tests: ResNet-18 at 96x192 (6 cameras), 32 channels, two
# decoder layers, 8 + 4 queries, trained for 2 iterations on the generated world and evaluated
# on its val scene. The data paths are placeholders set by the tests (data.train.ann_file=...).
point_cloud_range = [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]
voxel_size = [0.2, 0.2, 8]
class_names = [
    'car', 'truck', 'construction_vehicle', 'bus', 'trailer', 'barrier',
    'motorcycle', 'bicycle', 'pedestrian', 'traffic_cone'
]
embed_dims = 32
num_cams = 6
img_norm_cfg = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)
collect_keys = ['lidar2img', 'intrinsics', 'extrinsics', 'timestamp', 'img_timestamp', 'ego_pose',
                'ego_pose_inv']

model = dict(
    type='RepDetr3D',
    use_grid_mask=True,
    stride=[8, 16, 32, 64],
    position_level=[0, 1, 2, 3],
    img_backbone=dict(type='ResNet', depth=18, num_stages=4, out_indices=(0, 1, 2, 3), frozen_stages=-1,
                      norm_cfg=dict(type='BN2d', requires_grad=False), norm_eval=True, with_cp=True,
                      style='pytorch'),
    img_neck=dict(type='FPN', start_level=1, add_extra_convs='on_output', relu_before_extra_convs=True,
                  in_channels=[64, 128, 256, 512], out_channels=embed_dims, num_outs=4),
    img_roi_head=None,
    pts_bbox_head=dict(
        type='RayDNHead', num_classes=10, in_channels=embed_dims, embed_dims=embed_dims, num_query=8,
        memory_len=12, topk_proposals=4, num_propagated=4, scalar=2, noise_scale=1.0, dn_weight=1.0,
        split=0.75, with_dn=True, raydn_group=1, raydn_num=5, raydn_alpha=8, raydn_beta=2,
        raydn_radius=3, with_ego_pos=True, match_with_velo=False,
        code_weights=[2.0, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
        transformer=dict(type='Detr3DTransformer', decoder=dict(
            type='Detr3DTransformerDecoder', embed_dims=embed_dims, num_layers=2,
            transformerlayers=dict(
                type='Detr3DTemporalDecoderLayer', batch_first=True,
                attn_cfgs=[
                    dict(type='MultiheadAttention', embed_dims=embed_dims, num_heads=4, dropout=0.1),
                    dict(type='DeformableFeatureAggregationCuda', embed_dims=embed_dims, num_groups=4,
                         num_levels=4, num_cams=num_cams, dropout=0.1, num_pts=13, bias=2.0)],
                ffn_cfgs=dict(type='FFN', feedforward_channels=64, num_fcs=2, ffn_drop=0.0,
                              act_cfg=dict(type='ReLU', inplace=True)),
                feedforward_channels=2048, ffn_dropout=0.1, with_cp=True,
                operation_order=('self_attn', 'norm', 'cross_attn', 'norm', 'ffn', 'norm')))),
        bbox_coder=dict(type='NMSFreeCoder', post_center_range=[-61.2, -61.2, -10.0, 61.2, 61.2, 10.0],
                        pc_range=point_cloud_range, max_num=20, voxel_size=voxel_size, num_classes=10),
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=2.0),
        loss_bbox=dict(type='L1Loss', loss_weight=0.25),
        loss_iou=dict(type='GIoULoss', loss_weight=0.0)),
    train_cfg=dict(pts=dict(
        grid_size=[512, 512, 1], voxel_size=voxel_size, point_cloud_range=point_cloud_range,
        out_size_factor=4,
        assigner=dict(type='HungarianAssigner3D', cls_cost=dict(type='FocalLossCost', weight=2.0),
                      reg_cost=dict(type='BBox3DL1Cost', weight=0.25),
                      iou_cost=dict(type='IoUCost', weight=0.0), pc_range=point_cloud_range))))

ida_aug_conf = dict(resize_lim=(0.44, 0.55), final_dim=(96, 176), bot_pct_lim=(0.0, 0.0),
                    rot_lim=(0.0, 0.0), H=225, W=400, rand_flip=True)
train_pipeline = [
    dict(type='LoadMultiViewImageFromFiles', to_float32=True),
    dict(type='LoadAnnotations3D', with_bbox_3d=True, with_label_3d=True, with_bbox=True,
         with_label=True, with_bbox_depth=True),
    dict(type='ObjectRangeFilter', point_cloud_range=point_cloud_range),
    dict(type='ObjectNameFilter', classes=class_names),
    dict(type='ResizeCropFlipRotImage', data_aug_conf=ida_aug_conf, training=True),
    dict(type='NormalizeMultiviewImage', **img_norm_cfg),
    dict(type='PadMultiViewImage', size_divisor=32),
    dict(type='PETRFormatBundle3D', class_names=class_names, collect_keys=collect_keys + ['prev_exists']),
    dict(type='Collect3D', keys=['gt_bboxes_3d', 'gt_labels_3d', 'img', 'gt_bboxes', 'gt_labels',
                                 'centers2d', 'depths', 'prev_exists'] + collect_keys,
         meta_keys=('filename', 'ori_shape', 'img_shape', 'pad_shape', 'scale_factor', 'flip',
                    'box_mode_3d', 'box_type_3d', 'img_norm_cfg', 'scene_token')),
]
test_pipeline = [
    dict(type='LoadMultiViewImageFromFiles', to_float32=True),
    dict(type='ResizeCropFlipRotImage', data_aug_conf=ida_aug_conf, training=False),
    dict(type='NormalizeMultiviewImage', **img_norm_cfg),
    dict(type='PadMultiViewImage', size_divisor=32),
    dict(type='MultiScaleFlipAug3D', img_scale=(1333, 800), pts_scale_ratio=1, flip=False, transforms=[
        dict(type='PETRFormatBundle3D', collect_keys=collect_keys, class_names=class_names, with_label=False),
        dict(type='Collect3D', keys=['img'] + collect_keys,
             meta_keys=('filename', 'ori_shape', 'img_shape', 'pad_shape', 'scale_factor', 'flip',
                        'box_mode_3d', 'box_type_3d', 'img_norm_cfg', 'scene_token')),
    ]),
]
data = dict(
    samples_per_gpu=1,
    workers_per_gpu=0,
    train=dict(type='CustomNuScenesDataset', data_root='SET_BY_TEST', ann_file='SET_BY_TEST',
               pipeline=train_pipeline, classes=class_names, seq_mode=True, seq_split_num=1,
               collect_keys=collect_keys + ['img', 'prev_exists', 'img_metas'], queue_length=1,
               test_mode=False, use_valid_flag=True, filter_empty_gt=False, box_type_3d='LiDAR'),
    val=dict(type='CustomNuScenesDataset', data_root='SET_BY_TEST', ann_file='SET_BY_TEST',
             pipeline=test_pipeline, classes=class_names, queue_length=1,
             collect_keys=collect_keys + ['img', 'img_metas']),
    shuffler_sampler=dict(type='InfiniteGroupEachSampleInBatchSampler'),
    nonshuffler_sampler=dict(type='DistributedSampler'))

optimizer = dict(type='AdamW', lr=1e-3, weight_decay=0.01,
                 paramwise_cfg=dict(custom_keys={'img_backbone': dict(lr_mult=0.25)}))
optimizer_config = dict(grad_clip=dict(max_norm=35, norm_type=2))
lr_config = dict(policy='CosineAnnealing', warmup='linear', warmup_iters=1, warmup_ratio=1.0 / 3,
                 min_lr_ratio=1e-3)
runner = dict(type='IterBasedRunner', max_iters=2)
checkpoint_config = dict(interval=2)
evaluation = dict(interval=2)
log_config = dict(interval=1)
load_from = None
resume_from = None
