# BEV-space distillation on the generated world: distill_raydn_r50_r18_synthetic.py plus one
# BEVFeatureLoss per FPN level 0 and 1 (docs/kd_losses_features.md, "BEV-space distillation").
# Each lifts the student's and the teacher's FPN level onto a 64 x 64 BEV grid over the
# point-cloud range (4 height levels, no parameters) and compares the two BEV maps with the
# DistillBEV weighting: region factors from the GT boxes and the teacher's last-layer
# predictions (TP / FN / FP 1, easy background TN 0.1) times the max of the teacher's and the
# student's spatial attention.
# Family: the MSE (FitNetsLoss), DistillBEV's own choice: per-cell weights act directly on
# per-cell errors, and it matches magnitudes, which the lifted maps (averages of the same
# FPN features) share between teacher and student; the per-channel softmax of CWD would
# spread a channel over the 4096 cells, where most cells are easy background.
# Levels 0 and 1 only: the finest levels carry the object detail, and the two coarser ones
# would add lifting cost on a 2-core CPU for a few feature cells each.
# Run alone for an ablation with
#   --cfg-options "model.enabled_losses=[bev_fpn_0,bev_fpn_1]"
_base_ = ['./distill_raydn_r50_r18_synthetic.py']

bev_levels = [0, 1]
# Loss weight: the two BEV terms together carry about 25% of the detection loss's gradient
# norm on the student's neck at the start of training, measured by tools/kd_gradients.py
# (3 batches) with the 500-iteration synthetic teacher of docs/results.md ("BEV-space
# distillation and LiDAR depth"): at weight 1.5 the BEV family carried 1390% on the neck
# (the trained teacher's FPN maps are far larger than the random student's, and the MSE
# matches magnitudes), so 1.5 x 0.25 / 13.9 = 0.027. Re-measure for another teacher:
#   python tools/kd_gradients.py projects/configs/synthetic/distill_raydn_r50_r18_bev_synthetic.py \
#       --teacher-ckpt TEACHER --target-share bev=neck:0.25
bev_loss_weight = 0.027
bev_loss = dict(
    type='BEVFeatureLoss', pc_range=[-51.2, -51.2, -5.0, 51.2, 51.2, 3.0], bev_size=(64, 64),
    num_heights=4, height_reduction='mean', family=dict(type='FitNetsLoss'),
    region_weights=dict(gt_thr=0.5, teacher_thr=0.3, tn_weight=0.1), attention=True,
    attention_temperature=0.5, loss_weight=bev_loss_weight)

model = dict(
    distill_losses={
        f'bev_fpn_{i}': dict(bev_loss, inputs=dict(
            student=f's_fpn_{i}', teacher=f't_fpn_{i}', lidar2img='batch.lidar2img',
            pad_shape='batch.pad_shape', gt_bboxes_3d='batch.gt_bboxes_3d',
            teacher_cls='t_cls', teacher_box='t_box'))
        for i in bev_levels
    },
)
