# A tiny RayDN for engine tests on the tiny generated world of tests/conftest.py (400x225
# images, 2 train + 1 val scenes of 4 samples): 64x176 inputs, 32 channels, 1 decoder layer.
# data_root / ann_file are set by the tests (--cfg-options).
_base_ = ['../../../projects/configs/synthetic/raydn_r18_synthetic.py']

embed_dims = 32
ida_aug_conf = dict(_base_.ida_aug_conf, resize_lim=(0.42, 0.46), final_dim=(64, 176), H=225, W=400)
model = dict(
    img_backbone=dict(depth=18),
    img_neck=dict(out_channels=embed_dims),
    img_roi_head=dict(in_channels=embed_dims),
    pts_bbox_head=dict(
        in_channels=embed_dims,
        embed_dims=embed_dims,
        num_query=20,
        memory_len=16,
        topk_proposals=4,
        num_propagated=4,
        transformer=dict(decoder=dict(
            embed_dims=embed_dims,
            num_layers=1,
            transformerlayers=dict(
                attn_cfgs=[
                    dict(type='MultiheadAttention', embed_dims=embed_dims, num_heads=4,
                         dropout=0.1),
                    dict(type='DeformableFeatureAggregationCuda', embed_dims=embed_dims,
                         num_groups=4, num_levels=4, num_cams=6, dropout=0.1, num_pts=13,
                         bias=2.),
                ],
                ffn_cfgs=dict(type='FFN', embed_dims=embed_dims, feedforward_channels=64,
                              num_fcs=2, ffn_drop=0.0,
                              act_cfg=dict(type='ReLU', inplace=True)))))))


# mmengine substitutes ida_aug_conf into the base's pipelines when it reads the base, so the
# steps are rebuilt at this size; the test-time wrapper's steps run unwrapped.
def at_tiny_size(step):
    """A step of the base's pipelines with this config's ida_aug_conf."""
    return dict(step, data_aug_conf=ida_aug_conf) if step['type'] == 'ResizeCropFlipRotImage' else step


train_pipeline = [at_tiny_size(step) for step in _base_.train_pipeline]
test_pipeline = [at_tiny_size(inner) for step in _base_.test_pipeline
                 for inner in step.get('transforms', [step])]
data = dict(
    samples_per_gpu=1,
    workers_per_gpu=0,
    train=dict(pipeline=train_pipeline),
    val=dict(pipeline=test_pipeline),
    test=dict(pipeline=test_pipeline),
)
runner = dict(type='IterBasedRunner', max_iters=6)
lr_config = dict(warmup_iters=2)
checkpoint_config = dict(interval=3, max_keep_ckpts=2)
evaluation = dict(interval=6)
log_config = dict(interval=1)
