# What the RayDN and StreamPETR R50 models share: a ResNet-50 from the nuImages detector,
# 256-channel features, 300 + 128 propagated queries over a 512-entry memory, box-noise DN,
# six decoder layers, the NMS-free coder, the losses and the Hungarian assigner.
# The model configs add the detector, the neck, the 2D head, the decoder and the backbone
# stages their neck takes. It reads the data's point_cloud_range and num_frame_losses, so
# it builds on the schedule (which builds on the data).
_base_ = ['../schedules/streaming-60e-8x2.py']

voxel_size = [0.2, 0.2, 8]
model = dict(
    num_frame_head_grads=_base_.num_frame_losses,
    num_frame_backbone_grads=_base_.num_frame_losses,
    num_frame_losses=_base_.num_frame_losses,
    use_grid_mask=True,
    img_backbone=dict(
        init_cfg=dict(
            type='Pretrained',
            checkpoint='ckpts/cascade_mask_rcnn_r50_fpn_coco-20e_20e_nuim_20201009_124951-40963960.pth',
            prefix='backbone.'),
        type='ResNet',
        depth=50,
        num_stages=4,
        frozen_stages=-1,
        norm_cfg=dict(type='BN2d', requires_grad=False),
        norm_eval=True,
        with_cp=True,
        style='pytorch'),
    img_neck=dict(out_channels=256),
    img_roi_head=dict(num_classes=10, in_channels=256),
    pts_bbox_head=dict(
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
        with_ego_pos=True,
        match_with_velo=False,
        code_weights=[2.0, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
        transformer=dict(decoder=dict(
            num_layers=6,
            transformerlayers=dict(
                feedforward_channels=2048,
                ffn_dropout=0.1,
                with_cp=True,  # gradient checkpointing to save memory
                operation_order=('self_attn', 'norm', 'cross_attn', 'norm', 'ffn', 'norm')))),
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
