# HarmoDistill: StreamPETR R50 (nuImages init, 60 epochs; NDS 54.6) distilled into a
# StreamPETR R18 (ImageNet init), 704x256, 428 queries, 24 epochs on 4 GPUs x 4 samples
# (HarmoDistill-BEV's schedule). No StreamPETR R18 result is published.
#
# The student is the R50 StreamPETR config with the backbone swapped for ResNet-18
# (student_cfg_options). StreamPETR's CPFPN has two outputs: level 0 (stride 16, the one
# the heads use) leaves fpn_convs.0.conv, level 1 (stride 32) is lateral_convs.1.conv
# itself; both are distilled with the balanced KL loss (tau 4, reverse weight 7) as
# HarmoDistill does for RayDN's FPN levels, at weight 0.14: the released 0.1 scaled by the
# factor that makes the BKL terms carry half of the detection gradient norm on the neck at
# the start (measured on the generated world, docs/distillation.md "Loss weights"; measure
# again on nuScenes with tools/kd_gradients.py ... --target-share feature=neck:0.5).
#
# Data and schedule: the StreamPETR config at 4 GPUs x 4 for 24 epochs; backbone lr x0.25
# (ImageNet init). The teacher checkpoint must exist before training: docs/distillation.md.
_base_ = ['../StreamPETR/stream_petr_r50_flash_704_bs2_seq_428q_nui_60e.py']

num_gpus = 4
batch_size = 4
num_iters_per_epoch = 28130 // (num_gpus * batch_size)
num_epochs = 24

teacher_config = 'projects/configs/StreamPETR/stream_petr_r50_flash_704_bs2_seq_428q_nui_60e.py'
teacher_checkpoint = 'ckpts/stream_petr_r50_flash_704_bs2_seq_428q_nui_60e.pth'
student_backbone = dict(
    _delete_=True,
    init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet18'),
    type='ResNet',
    depth=18,
    num_stages=4,
    out_indices=(2, 3),
    frozen_stages=-1,
    norm_cfg=dict(type='BN2d', requires_grad=False),
    norm_eval=True,
    with_cp=True,
    style='pytorch')

neck_outputs = {0: 'img_neck.fpn_convs.0.conv', 1: 'img_neck.lateral_convs.1.conv'}
bkl = dict(type='BalancedKLLoss', tau=4.0, reverse_weight=7.0, loss_weight=0.14)

model = dict(
    _delete_=True,
    type='HarmoDistiller',
    teacher_cfg=teacher_config,
    teacher_ckpt=teacher_checkpoint,
    student_cfg=teacher_config,
    student_cfg_options={
        'model.img_backbone': student_backbone,
        'model.img_neck.in_channels': [256, 512],
    },
    taps={
        f'{who[0]}_neck_{level}': dict(model=who, path=path)
        for who in ('student', 'teacher') for level, path in neck_outputs.items()
    },
    distill_losses={
        f'bkl_neck_{level}': dict(bkl, inputs=dict(student=f's_neck_{level}', teacher=f't_neck_{level}'))
        for level in neck_outputs
    },
)

data = dict(samples_per_gpu=batch_size)
optimizer = dict(paramwise_cfg=dict(custom_keys={'img_backbone': dict(lr_mult=0.25)}))
evaluation = dict(interval=num_iters_per_epoch * num_epochs)
checkpoint_config = dict(interval=num_iters_per_epoch)
runner = dict(type='IterBasedRunner', max_iters=num_epochs * num_iters_per_epoch)
load_from = None
