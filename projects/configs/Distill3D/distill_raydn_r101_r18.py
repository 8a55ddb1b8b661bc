# HarmoDistill: RayDN R101 (projects/configs/RayDN/raydn_r101_704_bs2_seq_428q_nui_60e.py,
# trained with docs/training.md "R101 teacher") distilled into RayDN R18 (ImageNet init),
# 704x256, 428 queries, 24 epochs on 4 GPUs x 4 samples. The recipe is distill_raydn_r50_r18.py
# unchanged: the four FPN outputs (img_neck.fpn_convs.{0..3}.conv; the R101's neck also
# gives 256 channels at strides 8-64, so no adapter) with the balanced KL loss and the
# gradient-share weights measured with the R50 teacher. A stronger teacher changes the
# share: measure it again once the R101 teacher is trained and rescale,
#   python tools/kd_gradients.py projects/configs/Distill3D/distill_raydn_r101_r18.py \
#       --target-share feature=neck:0.5
#
# The teacher is loaded from teacher_checkpoint, frozen and run in eval mode under no_grad,
# so its training-only settings (with_cp, norm_eval=False, frozen_stages, the backbone
# lr_mult / warmup) have no effect here: BN uses the trained running statistics.
# The teacher checkpoint must exist before training starts: see docs/distillation.md.
_base_ = ['./distill_raydn_r50_r18.py']

teacher_config = 'projects/configs/RayDN/raydn_r101_704_bs2_seq_428q_nui_60e.py'
teacher_checkpoint = 'ckpts/raydn_r101_704_bs2_seq_428q_nui_60e.pth'

model = dict(teacher_cfg=teacher_config, teacher_ckpt=teacher_checkpoint)
