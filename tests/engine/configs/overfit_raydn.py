# The tiny RayDN of tiny_raydn.py made to memorise a handful of samples: no augmentation,
# no dropout, enough queries for every object of a frame, a higher learning rate. The over-fit
# test trains it on the val scene and evaluates it on the same samples.
_base_ = ['./tiny_raydn.py']

embed_dims = 32
model = dict(
    pts_bbox_head=dict(
        num_query=64,
        transformer=dict(decoder=dict(transformerlayers=dict(attn_cfgs=[
            dict(type='MultiheadAttention', embed_dims=embed_dims, num_heads=4, dropout=0.0),
            dict(type='DeformableFeatureAggregationCuda', embed_dims=embed_dims, num_groups=4,
                 num_levels=4, num_cams=6, dropout=0.0, num_pts=13, bias=2.),
        ])))))

ida_aug_conf = dict(_base_.ida_aug_conf, resize_lim=(0.44, 0.44), rand_flip=False)


def memorising(step):
    """A step of the base's pipelines at this config's fixed resize, with no random augmentation."""
    if step['type'] == 'ResizeCropFlipRotImage':
        return dict(step, data_aug_conf=ida_aug_conf, training=False)
    return step


train_pipeline = [memorising(step) for step in _base_.train_pipeline
                  if step['type'] != 'GlobalRotScaleTransImage']
test_pipeline = [memorising(step) for step in _base_.test_pipeline]
data = dict(
    train=dict(pipeline=train_pipeline, seq_split_num=1),
    val=dict(pipeline=test_pipeline),
    test=dict(pipeline=test_pipeline),
)
optimizer = dict(lr=2e-3)
runner = dict(type='IterBasedRunner', max_iters=300)
lr_config = dict(warmup_iters=20)
checkpoint_config = dict(interval=300, max_keep_ckpts=1)
evaluation = dict(interval=300)
log_config = dict(interval=10)
