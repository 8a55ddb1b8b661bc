# RayDN, ResNet-34 (ImageNet init, torchvision://resnet34, then the R50 nuImages file
# non-strictly, as released), 704x256, 300 + 128 propagated queries, streaming training for
# 24 epochs on 4 GPUs x 4 samples: the student configuration of HarmoDistill-BEV
# (helloworld77), whose distilled model reaches NDS 53.73 / mAP 42.35 on nuScenes val.
# Everything else (schedule, load_from) is the R18 config.
_base_ = ['./raydn_r18_704_bs2_seq_428q_nui_24e.py']

model = dict(
    img_backbone=dict(
        init_cfg=dict(checkpoint='torchvision://resnet34'),
        depth=34))
