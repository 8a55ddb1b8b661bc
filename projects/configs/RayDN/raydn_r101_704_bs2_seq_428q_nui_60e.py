# RayDN, ResNet-101 (ImageNet init, torchvision://resnet101), 704x256, 300 + 128 propagated
# queries, streaming training for 60 epochs on 8 GPUs x 2 samples: a stronger distillation
# teacher than the R50. No published RayDN R101 result or checkpoint exists; this is our
# recipe. Everything not set here is the R50 config (head, neck, data, schedule, fp16, clip).
#
# Stability settings (LabelDistill-style: the large pretrained backbone must not be
# disturbed while the randomly initialised heads still send large, noisy gradients):
# * trainable BN (requires_grad=True, norm_eval=False): there is no nuImages R101 detector
#   file here, so the ImageNet statistics are not those of 704x256 driving crops; with
#   12 images per GPU (2 samples x 6 cameras) the batch statistics are meaningful;
# * frozen_stages=1: the stem and stage 1 keep their ImageNet weights (generic edges and
#   textures; the FPN starts at stage 2, start_level=1), which saves their backward memory;
# * with_cp=True: gradient checkpointing per block (R101 has 33 blocks); our ResNet does not
#   update BN statistics in the recomputation, so it changes memory and time, not results;
# * img_backbone lr_mult 0.1 (R50: 0.25, the value for an ImageNet init in StreamPETR):
#   twice the depth and trainable BN make the backbone the part most easily pulled off its
#   pretrained optimum, so it moves 4x slower than the head (0.1 is the rate StreamPETR
#   uses for its nuImages backbones);
# * a per-group warmup (engine option custom_keys.<key>.warmup_iters): the head keeps the
#   R50's 500-iteration ramp, the backbone ramps from 1/3 over 2000 iterations (~1.1 epochs
#   of 1758), i.e. it stays at a small lr until the heads produce useful gradients. A longer
#   global warmup would also slow the heads' start, which is what the warmup should not do.
# Training it: docs/training.md, "R101 teacher".
_base_ = ['./raydn_r50_704_bs2_seq_428q_nui_60e.py']

backbone_warmup_iters = 2000

model = dict(
    img_backbone=dict(
        init_cfg=dict(_delete_=True, type='Pretrained', checkpoint='torchvision://resnet101'),
        depth=101,
        frozen_stages=1,
        norm_cfg=dict(type='BN2d', requires_grad=True),
        norm_eval=False,
        with_cp=True))

optimizer = dict(
    paramwise_cfg=dict(
        custom_keys={
            'img_backbone': dict(lr_mult=0.1, warmup_iters=backbone_warmup_iters),
        }))

# The R50 config's load_from (the remapped nuImages R50 detector, non-strict) must not be
# applied: its backbone tensors match the shapes of R101's first blocks (stage 3 blocks 0-5
# among them) and would overwrite the ImageNet R101 weights piecemeal.
load_from = None
load_from_strict = True
