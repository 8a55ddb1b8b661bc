# HarmoDistill as released (the published recipe, preset): RayDN R50 (nuImages init, 60 epochs; NDS 56.1) distilled into RayDN R18
# (ImageNet init), 704x256, 428 queries, 24 epochs on 4 GPUs x 4 samples. Released result of
# HarmoDistill-BEV (helloworld77): NDS 52.33 / mAP 40.75 on nuScenes val.
#
# As released, only the FPN outputs are distilled: img_neck.fpn_convs.{0..3}.conv of both
# models (strides 8, 16, 32, 64; 256 channels each, so no adapter) with the balanced KL
# loss: tau 4, reverse weight 7, weight 0.1 (0.01 on the stride-64 level), forward KL first
# and reverse KL later (the engine tells the loss the training progress).
#
# Data, optimizer and schedule are the student's (projects/configs/RayDN/..._r18_..._24e.py).
# distill_raydn_r50_r18.py is this recipe with the BKL weights set by gradient share.
# The teacher checkpoint must exist before training starts: see docs/distillation.md.
_base_ = ['../RayDN/raydn_r18_704_bs2_seq_428q_nui_24e.py']

teacher_config = 'projects/configs/RayDN/raydn_r50_704_bs2_seq_428q_nui_60e.py'
teacher_checkpoint = 'ckpts/raydn_r50_704_bs2_seq_428q_nui_60e_20240403.pth'
student_config = 'projects/configs/RayDN/raydn_r18_704_bs2_seq_428q_nui_24e.py'
# As released, the distilled student starts from ImageNet alone: the student config's
# load_from (R50 nuImages file, for undistilled training) is not applied, and load_from here
# would address the distiller's keys (student.*, teacher.*), see docs/model_zoo.md.
load_from = None

fpn_levels = [0, 1, 2, 3]
fpn_loss_weights = [0.1, 0.1, 0.1, 0.01]
bkl = dict(type='BalancedKLLoss', tau=4.0, reverse_weight=7.0)

model = dict(
    _delete_=True,
    type='HarmoDistiller',
    teacher_cfg=teacher_config,
    teacher_ckpt=teacher_checkpoint,
    student_cfg=student_config,
    taps={
        f'{who[0]}_fpn_{i}': dict(model=who, path=f'img_neck.fpn_convs.{i}.conv')
        for who in ('student', 'teacher') for i in fpn_levels
    },
    distill_losses={
        f'bkl_fpn_{i}': dict(bkl, loss_weight=w, inputs=dict(student=f's_fpn_{i}', teacher=f't_fpn_{i}'))
        for i, w in zip(fpn_levels, fpn_loss_weights)
    },
)
