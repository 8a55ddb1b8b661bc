# RayDN, ResNet-50 (nuImages init), 704x256, 300 + 128 propagated queries, streaming training
# for 60 epochs on 8 GPUs x 2 samples. Values follow the upstream config of the same name
# (LiewFeng/RayDN); published result: NDS 56.1 / mAP 47.1 on nuScenes val. The usual
# distillation teacher.
#
# The decoder layer accepts the base's feedforward_channels=2048 / ffn_dropout=0.1 as upstream
# does, and like upstream builds its FFN 1024 wide without dropout (the published checkpoints
# hold 1024-wide FFNs); see projects/mmdet3d_plugin/models/transformers/detr3d_transformer.py.
_base_ = ['../_base_/models/streaming-r50-428q.py']

model = dict(
    type='RepDetr3D',
    stride=[8, 16, 32, 64],
    position_level=[0, 1, 2, 3],
    img_backbone=dict(out_indices=(0, 1, 2, 3)),
    img_neck=dict(
        type='FPN',  # start_level=1: the stride-4 stage feeds no head
        start_level=1,
        add_extra_convs='on_output',
        relu_before_extra_convs=True,
        in_channels=[256, 512, 1024, 2048],
        num_outs=4),
    img_roi_head=dict(
        type='YOLOXHeadCustom',
        strides=[8, 16, 32, 64],
        train_cfg=dict(assigner=dict(type='SimOTAAssigner', center_radius=2.5)),
        test_cfg=dict(score_thr=0.01, nms=dict(type='nms', iou_threshold=0.65))),
    pts_bbox_head=dict(
        type='RayDNHead',
        with_dn=True,
        raydn_group=1,
        raydn_num=5,
        raydn_alpha=8,
        raydn_beta=2,
        raydn_radius=3,
        transformer=dict(
            type='Detr3DTransformer',
            decoder=dict(
                type='Detr3DTransformerDecoder',
                embed_dims=256,
                transformerlayers=dict(
                    type='Detr3DTemporalDecoderLayer',
                    batch_first=True,
                    attn_cfgs=[
                        dict(type='MultiheadAttention', embed_dims=256, num_heads=8, dropout=0.1),
                        dict(type='DeformableFeatureAggregationCuda', embed_dims=256, num_groups=8,
                             num_levels=4, num_cams=6, dropout=0.1, num_pts=13, bias=2.),
                    ])))))

# As upstream (mmcv's load_from is non-strict): the remapped nuImages detector file holds the
# backbone and the FPN only, so the heads keep their own initialisation.
load_from = 'ckpts/cascade_mask_rcnn_r50_fpn_coco-20e_20e_nuim-remapped.pth'
load_from_strict = False
