# The schedule of both R50 configs: 60 epochs of the streaming nuScenes data on 8 GPUs x
# batch_size samples, counted in iterations of that global batch (28130 training samples per
# epoch); AdamW with a cosine schedule after a linear warmup, the upstream fp16 hook.
# It counts iterations of the data's batch, so it builds on the data base.
_base_ = ['../datasets/nus-3d-streaming.py', '../default_runtime.py']

num_gpus = 8
num_iters_per_epoch = 28130 // (num_gpus * _base_.batch_size)
num_epochs = 60

optimizer = dict(
    type='AdamW',
    lr=4e-4,  # bs 8: 2e-4 || bs 16: 4e-4
    paramwise_cfg=dict(
        custom_keys={
            'img_backbone': dict(lr_mult=0.25),
        }),
    weight_decay=0.01)

optimizer_config = dict(type='Fp16OptimizerHook', loss_scale='dynamic',
                        grad_clip=dict(max_norm=35, norm_type=2))
fp16 = dict(loss_scale='dynamic')
lr_config = dict(
    policy='CosineAnnealing',
    warmup='linear',
    warmup_iters=500,
    warmup_ratio=1.0 / 3,
    min_lr_ratio=1e-3,
)

evaluation = dict(interval=num_iters_per_epoch * num_epochs)
find_unused_parameters = False  # must stay False with gradient checkpointing
checkpoint_config = dict(interval=num_iters_per_epoch, max_keep_ckpts=3)
runner = dict(
    type='IterBasedRunner', max_iters=num_epochs * num_iters_per_epoch)
