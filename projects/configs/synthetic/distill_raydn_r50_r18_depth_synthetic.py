# HarmoDistill on the generated world (distill_raydn_r50_r18_synthetic.py) plus LiDAR soft-depth
# supervision of the student (LabelDistill-style, docs/kd_losses_features.md): the frame's
# LiDAR sweep is projected into the augmented cameras (LoadLidarDepthMaps, training pipeline
# only) and a depth head on the student's stride-16 FPN level (s_fpn_1: fpn_convs.1 of the
# start_level=1 FPN) learns Gaussian depth-bin labels from it. The head belongs to the loss:
# the exported student is the plain R18 RayDN, and inference stays camera-only.
# Train it as the other distillation configs (docs/distillation.md), e.g.
#   python tools/distillation.py projects/configs/synthetic/distill_raydn_r50_r18_depth_synthetic.py
# or switch the term off with --cfg-options "model.enabled_losses=[...]" without lidar_depth.
_base_ = ['./distill_raydn_r50_r18_synthetic.py']

depth_stride = 16  # the stride of s_fpn_1
# The world's LiDAR reaches 70 m (datasets/synthetic/lidar.py); 1 m bins over 1-65 m.
depth_range = (1.0, 65.0)
depth_bins = 64
# Loss weight: the depth term carries about 25% of the detection loss's gradient norm on the
# student's neck at the start of training (as the BEV terms of the sibling BEV config),
# measured by tools/kd_gradients.py (3 batches, the 500-iteration synthetic teacher of
# docs/results.md): 2.73% at weight 1.0, so 9.0. Re-measure with
#   python tools/kd_gradients.py projects/configs/synthetic/distill_raydn_r50_r18_depth_synthetic.py \
#       --teacher-ckpt TEACHER --target-share depth=neck:0.25
depth_loss_weight = 9.0


# The base's train pipeline (built by its helpers) with the depth maps made right after the
# image augmentation (they need the augmented intrinsics; the BEV augmentation after it does
# not change them) and collected. The val / test pipelines are the base's: no LiDAR.
def with_lidar_depth(pipeline):
    """``pipeline`` with LoadLidarDepthMaps after ResizeCropFlipRotImage and depth_maps collected."""
    steps = []
    for step in pipeline:
        if step['type'] == 'Collect3D':
            step = dict(step, keys=list(step['keys']) + ['depth_maps'])
        steps.append(step)
        if step['type'] == 'ResizeCropFlipRotImage':
            steps.append(dict(type='LoadLidarDepthMaps', stride=depth_stride, min_depth=depth_range[0]))
    return steps


train_pipeline = with_lidar_depth(_base_.train_pipeline)
# collect_keys: the dataset checks that every training sample carries the depth maps.
data = dict(train=dict(pipeline=train_pipeline, collect_keys=['depth_maps']))

model = dict(
    distill_losses=dict(
        lidar_depth=dict(
            type='LidarDepthLoss', in_channels=_base_.embed_dims, depth_range=depth_range,
            num_bins=depth_bins, bin_spacing='uniform', label_type='gaussian', sigma=1.0,
            loss_weight=depth_loss_weight, inputs=dict(student='s_fpn_1', depth_maps='batch.depth_maps'))))
