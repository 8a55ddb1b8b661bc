# HarmoDistill RayDN R50 -> R18 (distill_raydn_r50_r18.py) plus BEV-space distillation of
# FPN levels 0 and 1 (docs/kd_losses_features.md, "BEV-space distillation"): each level of
# the student and of the teacher is lifted without parameters onto a 128 x 128 BEV grid
# (0.8 m cells over the point-cloud range, 4 height levels) and the two BEV maps are aligned
# by the MSE (DistillBEV's loss), weighted per cell by the DistillBEV regions (GT boxes and
# the teacher's confident last-layer predictions: TP / FN / FP 1, easy background TN 0.1)
# times the max of the teacher's and the student's spatial attention.
# The loss weight (0.027) is the synthetic config's with its trained teacher (projects/configs/synthetic/
# distill_raydn_r50_r18_bev_synthetic.py); it is not measured on nuScenes: measure and rescale,
#   python tools/kd_gradients.py projects/configs/Distill3D/distill_raydn_r50_r18_bev.py \
#       --target-share bev=neck:0.25
_base_ = ['./distill_raydn_r50_r18.py']

last_layer = 5  # num_layers - 1 of RayDN
bev_levels = [0, 1]
bev_loss = dict(
    type='BEVFeatureLoss', pc_range=[-51.2, -51.2, -5.0, 51.2, 51.2, 3.0], bev_size=(128, 128),
    num_heights=4, height_reduction='mean', family=dict(type='FitNetsLoss'),
    region_weights=dict(gt_thr=0.5, teacher_thr=0.3, tn_weight=0.1), attention=True,
    attention_temperature=0.5, loss_weight=0.027)

model = dict(
    # The teacher's last-layer class logits and box codes, for the region labels.
    taps=dict(
        t_cls=dict(model='teacher', path='pts_bbox_head.cls_branches.0', call=last_layer),
        t_box=dict(model='teacher', path='pts_bbox_head.box_codes', call=last_layer)),
    distill_losses={
        f'bev_fpn_{i}': dict(bev_loss, inputs=dict(
            student=f's_fpn_{i}', teacher=f't_fpn_{i}', lidar2img='batch.lidar2img',
            pad_shape='batch.pad_shape', gt_bboxes_3d='batch.gt_bboxes_3d',
            teacher_cls='t_cls', teacher_box='t_box'))
        for i in bev_levels
    },
)
