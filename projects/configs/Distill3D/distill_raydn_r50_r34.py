# HarmoDistill: RayDN R50 distilled into RayDN R34: the released recipe
# (distill_raydn_r50_r34_released.py: FPN outputs only, balanced KL, tau 4, reverse weight 7,
# forward KL first and reverse KL later) with the loss weights set so that the four BKL terms
# together carry half of the detection loss's gradient norm on the student's FPN at the
# start of training (docs/distillation.md, "Loss weights").
#
# The share was measured by tools/kd_gradients.py on the generated world (the synthetic
# distillation config: with the released weights the BKL terms carry 36% of the detection
# gradient on the neck, so x1.39 gives 50%; 50.8% measured at 0.14). No nuScenes data or
# trained teacher exists where this was written: on nuScenes measure it again and rescale,
#   python tools/kd_gradients.py projects/configs/Distill3D/distill_raydn_r50_r34.py \
#       --target-share feature=neck:0.5
# Published numbers (NDS 53.73 / mAP 42.35) belong to the released preset, not to these weights.
_base_ = ['./distill_raydn_r50_r34_released.py']

model = dict(
    distill_losses={
        f'bkl_fpn_{i}': dict(loss_weight=w) for i, w in zip([0, 1, 2, 3], [0.14, 0.14, 0.14, 0.014])
    },
)
