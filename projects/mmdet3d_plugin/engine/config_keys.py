"""Which top-level keys of a config the project reads, ignores or refuses.

StreamPETR / RayDN configs are python files: besides the sections the engine reads they hold
free variables used to write those sections (``num_gpus``, ``ida_aug_conf``,
``train_pipeline``, ...). Those cannot be listed, so the rule is:

* :data:`ENGINE_KEYS` and :data:`TOOL_KEYS` are read (by the engine, by the tools);
* :data:`IGNORED_UPSTREAM_KEYS` (top level) and :data:`IGNORED_UPSTREAM_SECTION_KEYS`
  (inside a read section) are mmcv runtime keys of upstream configs that have no effect
  here; they are accepted, so that an upstream config loads, with one warning naming them.
  The shipped configs carry none of them;
* any other key is a free variable and accepted, unless it is a close match of a read key
  (``checkpoint_confg``, ``optimzer``): that is a typo whose section would silently fall
  back to its default, and it is refused with the key it resembles.
"""
from __future__ import annotations

import difflib
import logging
from typing import Any, Mapping

logger = logging.getLogger(__name__)

#: Top-level keys the engine reads (engine/runner.py, runtime_config.py, precision.py).
ENGINE_KEYS = (
    "model", "data", "optimizer", "optimizer_config", "lr_config", "runner", "fp16", "precision",
    "checkpoint_config", "log_config", "evaluation", "load_from", "load_from_strict",
    "resume_from", "find_unused_parameters",
)
#: Top-level keys tools read (tools/visualize.py, demo.py, benchmark_data.py).
TOOL_KEYS = ("class_names", "point_cloud_range", "ida_aug_conf")
#: Upstream (mmcv 1.x runner) keys with no effect here: the launcher, logging and plugin
#: loading are Lightning's and the package's own; the work dir is ``--work-dir``.
IGNORED_UPSTREAM_KEYS = (
    "dist_params", "log_level", "workflow", "plugin", "plugin_dir", "file_client_args",
    "work_dir", "gpu_ids", "opencv_num_threads", "mp_start_method", "cudnn_benchmark",
    "custom_hooks", "auto_resume",
)
#: Keys inside read sections that upstream configs carry and nothing here reads: the mmcv
#: logger hooks (the engine always writes CSV and TensorBoard logs), the evaluation hook's
#: visualisation pipeline and metric (evaluation runs ``data.val``'s pipeline and the
#: official nuScenes detection metrics).
IGNORED_UPSTREAM_SECTION_KEYS = {"log_config": ("hooks",), "evaluation": ("pipeline", "metric")}
#: How close (difflib ratio) an unknown key must be to a read key to count as its typo.
TYPO_CUTOFF = 0.8


def check_top_level_keys(cfg: Mapping[str, Any]) -> list[str]:
    """Refuse top-level keys that are typos of read keys; warn about ignored upstream keys.

    Returns:
        The ignored upstream keys present (sorted; section keys dotted, ``log_config.hooks``).

    Raises:
        KeyError: a key is not read but is a close match of one that is.
    """
    known = ENGINE_KEYS + TOOL_KEYS
    for key in cfg:
        if key in known or key in IGNORED_UPSTREAM_KEYS:
            continue
        close = difflib.get_close_matches(key, known, n=1, cutoff=TYPO_CUTOFF)
        if close:
            raise KeyError(
                f"Unknown top-level key '{key}' in the config: did you mean '{close[0]}'? "
                f"As written, '{close[0]}' keeps its default and '{key}' is never read "
                "(the rule for top-level keys is in docs/training.md).")
    ignored = ignored_upstream_keys(cfg)
    if ignored:
        logger.warning("config keys %s are upstream mmcv runtime settings with no effect here "
                       "(see docs/training.md)", ignored)
    return ignored


def ignored_upstream_keys(cfg: Mapping[str, Any]) -> list[str]:
    """The upstream keys of ``cfg`` that nothing reads, sorted; section keys dotted."""
    ignored = [key for key in cfg if key in IGNORED_UPSTREAM_KEYS]
    for section, keys in IGNORED_UPSTREAM_SECTION_KEYS.items():
        value = cfg.get(section)
        if isinstance(value, Mapping):
            ignored.extend(f"{section}.{key}" for key in keys if key in value)
    return sorted(ignored)
