# RayDN, ResNet-18 (ImageNet init, torchvision://resnet18), 704x256, 300 + 128
# propagated queries, streaming training for 24 epochs on 4 GPUs x 4 samples: the student
# configuration of HarmoDistill-BEV (helloworld77), whose distilled model reaches NDS 52.33 /
# mAP 40.75 on nuScenes val. Everything else is the R50 RayDN config.
_base_ = ['./raydn_r50_704_bs2_seq_428q_nui_60e.py']

num_gpus = 4
batch_size = 4
num_iters_per_epoch = 28130 // (num_gpus * batch_size)
num_epochs = 24

model = dict(
    img_backbone=dict(
        _delete_=True,
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet18'),
        type='ResNet',
        depth=18,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='BN2d', requires_grad=False),
        norm_eval=True,
        with_cp=True,
        style='pytorch'),
    img_neck=dict(in_channels=[64, 128, 256, 512]))

data = dict(samples_per_gpu=batch_size)
evaluation = dict(interval=num_iters_per_epoch * num_epochs)
checkpoint_config = dict(interval=num_iters_per_epoch)
runner = dict(type='IterBasedRunner', max_iters=num_epochs * num_iters_per_epoch)
load_from = None  # the backbone alone starts from ImageNet (img_backbone.init_cfg)
