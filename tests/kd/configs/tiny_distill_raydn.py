# The distiller of the CPU tests: tiny RayDN teacher and student (tiny_raydn.py), the four FPN
# outputs distilled with the balanced KL loss as in projects/configs/Distill3D. Data and
# schedule are the student's. The tests set model.teacher_ckpt and the data paths.
_base_ = ['./tiny_raydn.py']

tiny_config = 'tests/kd/configs/tiny_raydn.py'
fpn_levels = [0, 1, 2, 3]

model = dict(
    _delete_=True,
    type='HarmoDistiller',
    teacher_cfg=tiny_config,
    teacher_ckpt='SET_BY_TEST',
    student_cfg=tiny_config,
    taps={
        f'{who[0]}_fpn_{i}': dict(model=who, path=f'img_neck.fpn_convs.{i}.conv')
        for who in ('student', 'teacher') for i in fpn_levels
    },
    distill_losses={
        f'bkl_fpn_{i}': dict(type='BalancedKLLoss', tau=4.0, reverse_weight=7.0, loss_weight=0.1,
                             inputs=dict(student=f's_fpn_{i}', teacher=f't_fpn_{i}'))
        for i in fpn_levels
    },
)
