# Runtime defaults, in the layout of mmdetection3d's configs/_base_/default_runtime.py.
# The Lightning engine maps these keys onto its trainer (see docs/training.md).
checkpoint_config = dict(interval=1, max_keep_ckpts=3)
log_config = dict(interval=50)  # CSV and TensorBoard logs under the work dir
load_from = None
resume_from = None
