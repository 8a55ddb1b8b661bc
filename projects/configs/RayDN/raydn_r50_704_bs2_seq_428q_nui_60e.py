# RayDN, ResNet-50 (nuImages init), 704x256, 300 + 128 propagated queries, streaming training
# for 60 epochs on 8 GPUs x 2 samples. Values follow the upstream config of the same name
# (LiewFeng/RayDN); published result: NDS 56.1 / mAP 47.1 on nuScenes val. The usual
# distillation teacher.
#
# The decoder layer accepts feedforward_channels=2048 / ffn_dropout=0.1 as upstream does, and
# like upstream builds its FFN 1024 wide without dropout (the published checkpoints hold
# 1024-wide FFNs); see projects/mmdet3d_plugin/models/utils/detr3d_transformer.py.
_base_ = ['../_base_/schedules/streaming-60e-8x2.py']

voxel_size = [0.2, 0.2, 8]
model = dict(
    type='RepDetr3D',
    num_frame_head_grads=_base_.num_frame_losses,
    num_frame_backbone_grads=_base_.num_frame_losses,
    num_frame_losses=_base_.num_frame_losses,
    use_grid_mask=True,
    stride=[8, 16, 32, 64],
    position_level=[0, 1, 2, 3],
    img_backbone=dict(
        init_cfg=dict(
            type='Pretrained',
            checkpoint='ckpts/cascade_mask_rcnn_r50_fpn_coco-20e_20e_nuim_20201009_124951-40963960.pth',
            prefix='backbone.'),
        type='ResNet',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='BN2d', requires_grad=False),
        norm_eval=True,
        with_cp=True,
        style='pytorch'),
    img_neck=dict(
        type='FPN',  # start_level=1: the stride-4 stage feeds no head
        start_level=1,
        add_extra_convs='on_output',
        relu_before_extra_convs=True,
        in_channels=[256, 512, 1024, 2048],
        out_channels=256,
        num_outs=4),
    img_roi_head=dict(
        type='YOLOXHeadCustom',
        num_classes=10,
        in_channels=256,
        strides=[8, 16, 32, 64],
        train_cfg=dict(assigner=dict(type='SimOTAAssigner', center_radius=2.5)),
        test_cfg=dict(score_thr=0.01, nms=dict(type='nms', iou_threshold=0.65))),
    pts_bbox_head=dict(
        type='RayDNHead',
        num_classes=10,
        in_channels=256,
        num_query=300,
        memory_len=512,
        topk_proposals=128,
        num_propagated=128,
        scalar=10,  # box-noise DN groups
        noise_scale=1.0,
        dn_weight=1.0,  # DN loss weight
        split=0.75,  # positive rate
        with_dn=True,
        raydn_group=1,
        raydn_num=5,
        raydn_alpha=8,
        raydn_beta=2,
        raydn_radius=3,
        with_ego_pos=True,
        match_with_velo=False,
        code_weights=[2.0, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
        transformer=dict(
            type='Detr3DTransformer',
            decoder=dict(
                type='Detr3DTransformerDecoder',
                embed_dims=256,
                num_layers=6,
                transformerlayers=dict(
                    type='Detr3DTemporalDecoderLayer',
                    batch_first=True,
                    attn_cfgs=[
                        dict(
                            type='MultiheadAttention',
                            embed_dims=256,
                            num_heads=8,
                            dropout=0.1),
                        dict(
                            type='DeformableFeatureAggregationCuda',
                            embed_dims=256,
                            num_groups=8,
                            num_levels=4,
                            num_cams=6,
                            dropout=0.1,
                            num_pts=13,
                            bias=2.),
                    ],
                    feedforward_channels=2048,  # does not set the FFN width (see top)
                    ffn_dropout=0.1,
                    with_cp=True,  # gradient checkpointing to save memory
                    operation_order=('self_attn', 'norm', 'cross_attn', 'norm',
                                     'ffn', 'norm')),
            )),
        bbox_coder=dict(
            type='NMSFreeCoder',
            post_center_range=[-61.2, -61.2, -10.0, 61.2, 61.2, 10.0],
            pc_range=_base_.point_cloud_range,
            max_num=300,
            voxel_size=voxel_size,
            num_classes=10),
        loss_cls=dict(
            type='FocalLoss',
            use_sigmoid=True,
            gamma=2.0,
            alpha=0.25,
            loss_weight=2.0),
        loss_bbox=dict(type='L1Loss', loss_weight=0.25),
        loss_iou=dict(type='GIoULoss', loss_weight=0.0)),
    # model training and testing settings
    train_cfg=dict(pts=dict(
        grid_size=[512, 512, 1],
        voxel_size=voxel_size,
        point_cloud_range=_base_.point_cloud_range,
        out_size_factor=4,
        assigner=dict(
            type='HungarianAssigner3D',
            cls_cost=dict(type='FocalLossCost', weight=2.0),
            reg_cost=dict(type='BBox3DL1Cost', weight=0.25),
            iou_cost=dict(type='IoUCost', weight=0.0),  # zero weight, for config compatibility
            pc_range=_base_.point_cloud_range))))

# As upstream (mmcv's load_from is non-strict): the remapped nuImages detector file holds the
# backbone and the FPN only, so the heads keep their own initialisation.
load_from = 'ckpts/cascade_mask_rcnn_r50_fpn_coco-20e_20e_nuim-remapped.pth'
load_from_strict = False
