# StreamPETR, ResNet-50 (nuImages init), 704x256, 300 + 128 propagated queries, streaming
# training for 60 epochs on 8 GPUs x 2 samples. Values follow the upstream config of the
# same name (exiawsh/StreamPETR); published result: NDS 54.6 / mAP 44.9 on nuScenes val.
_base_ = ['../_base_/models/streaming-r50-428q.py']

model = dict(
    type='Petr3D',
    img_backbone=dict(out_indices=(2, 3)),
    img_neck=dict(
        type='CPFPN',  # FPN without the unused output convs
        in_channels=[1024, 2048],
        num_outs=2),
    img_roi_head=dict(
        type='FocalHead',
        loss_cls2d=dict(type='QualityFocalLoss', use_sigmoid=True, beta=2.0, loss_weight=2.0),
        loss_centerness=dict(type='GaussianFocalLoss', reduction='mean', loss_weight=1.0),
        loss_bbox2d=dict(type='L1Loss', loss_weight=5.0),
        loss_iou2d=dict(type='GIoULoss', loss_weight=2.0),
        loss_centers2d=dict(type='L1Loss', loss_weight=10.0),
        train_cfg=dict(
            assigner2d=dict(
                type='HungarianAssigner2D',
                cls_cost=dict(type='FocalLossCost', weight=2.),
                reg_cost=dict(type='BBoxL1Cost', weight=5.0, box_format='xywh'),
                iou_cost=dict(type='IoUCost', iou_mode='giou', weight=2.0),
                centers2d_cost=dict(type='BBox3DL1Cost', weight=10.0)))),
    pts_bbox_head=dict(
        type='StreamPETRHead',
        LID=True,
        with_position=True,
        position_range=[-61.2, -61.2, -10.0, 61.2, 61.2, 10.0],
        transformer=dict(
            type='PETRTemporalTransformer',
            decoder=dict(
                type='PETRTransformerDecoder',
                return_intermediate=True,
                transformerlayers=dict(
                    type='PETRTemporalDecoderLayer',
                    attn_cfgs=[
                        dict(type='MultiheadAttention', embed_dims=256, num_heads=8, dropout=0.1),
                        dict(type='PETRMultiheadFlashAttention', embed_dims=256, num_heads=8,
                             dropout=0.1),
                    ])))))

# 0.1 works better with 2D-pretrained weights
optimizer = dict(paramwise_cfg=dict(custom_keys={'img_backbone': dict(lr_mult=0.1)}))
