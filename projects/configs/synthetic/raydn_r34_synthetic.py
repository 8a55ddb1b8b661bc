# The synthetic student: the teacher's RayDN recipe (raydn_r50_synthetic.py) on a ResNet-34,
# from scratch, at 6 x 128 x 352. Distilled from the R50 teacher by
# projects/configs/synthetic/distill_raydn_r50_r34_synthetic.py, or trained alone as the
# no-distillation baseline under the same budget.
_base_ = ['./raydn_r50_synthetic.py']

model = dict(
    img_backbone=dict(depth=34),
    img_neck=dict(in_channels=[64, 128, 256, 512]))
