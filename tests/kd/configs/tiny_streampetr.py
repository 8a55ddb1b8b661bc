# A StreamPETR detector shrunk for CPU tests (2 cameras, 64x176, 32 channels, two layers).
point_cloud_range = [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]
class_names = [
    'car', 'truck', 'construction_vehicle', 'bus', 'trailer', 'barrier',
    'motorcycle', 'bicycle', 'pedestrian', 'traffic_cone'
]
embed_dims = 32
model = dict(
    type='Petr3D', use_grid_mask=True,
    img_backbone=dict(type='ResNet', depth=18, num_stages=4, out_indices=(2, 3), frozen_stages=-1,
                      norm_cfg=dict(type='BN2d', requires_grad=False), norm_eval=True, with_cp=True,
                      style='pytorch'),
    img_neck=dict(type='CPFPN', in_channels=[256, 512], out_channels=embed_dims, num_outs=2),
    img_roi_head=None,
    pts_bbox_head=dict(
        type='StreamPETRHead', num_classes=10, in_channels=embed_dims, embed_dims=embed_dims,
        num_query=12, memory_len=16, topk_proposals=4, num_propagated=4, scalar=2, noise_scale=1.0,
        split=0.75, LID=True, with_position=True, match_with_velo=False,
        position_range=[-61.2, -61.2, -10.0, 61.2, 61.2, 10.0],
        code_weights=[2.0, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
        transformer=dict(type='PETRTemporalTransformer', decoder=dict(
            type='PETRTransformerDecoder', return_intermediate=True, num_layers=2,
            transformerlayers=dict(
                type='PETRTemporalDecoderLayer',
                attn_cfgs=[
                    dict(type='MultiheadAttention', embed_dims=embed_dims, num_heads=4, dropout=0.1),
                    dict(type='PETRMultiheadFlashAttention', embed_dims=embed_dims, num_heads=4,
                         dropout=0.1)],
                feedforward_channels=64, ffn_dropout=0.1, with_cp=True,
                operation_order=('self_attn', 'norm', 'cross_attn', 'norm', 'ffn', 'norm')))),
        bbox_coder=dict(type='NMSFreeCoder', post_center_range=[-61.2, -61.2, -10.0, 61.2, 61.2, 10.0],
                        pc_range=point_cloud_range, max_num=30, voxel_size=[0.2, 0.2, 8], num_classes=10),
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=2.0),
        loss_bbox=dict(type='L1Loss', loss_weight=0.25),
        loss_iou=dict(type='GIoULoss', loss_weight=0.0)),
    train_cfg=dict(pts=dict(
        grid_size=[512, 512, 1], voxel_size=[0.2, 0.2, 8], point_cloud_range=point_cloud_range,
        out_size_factor=4,
        assigner=dict(type='HungarianAssigner3D', cls_cost=dict(type='FocalLossCost', weight=2.0),
                      reg_cost=dict(type='BBox3DL1Cost', weight=0.25),
                      iou_cost=dict(type='IoUCost', weight=0.0), pc_range=point_cloud_range))))
