# HarmoDistill as released (the published recipe, preset): RayDN R50 (nuImages init, 60 epochs;
# NDS 56.1) distilled into RayDN R34 (ImageNet init), 704x256, 428 queries, 24 epochs on
# 4 GPUs x 4 samples. Released result of HarmoDistill-BEV (helloworld77): NDS 53.73 /
# mAP 42.35 on nuScenes val. The recipe (taps, losses, weights) is the R18 one
# (distill_raydn_r50_r18_released.py); the R18 and R34 students share data and schedule.
_base_ = ['./distill_raydn_r50_r18_released.py']

student_config = 'projects/configs/RayDN/raydn_r34_704_bs2_seq_428q_nui_24e.py'
model = dict(student_cfg=student_config)
