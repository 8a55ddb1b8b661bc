"""The ``load_from`` step of a training run (initial weights from a checkpoint file), and what
a checkpoint would give a model, computed from keys and shapes alone."""
from __future__ import annotations

from pathlib import Path

from lightning.pytorch.utilities import rank_zero_info
from mmengine.config import Config
from torch import nn

from ..core.checkpoint import numpy_safe_globals, read_checkpoint, revise_state_dict_keys, split_checkpoint
from ..core.checkpoint_match import LoadReport, load_matching_checkpoint, match_state_dicts
from ..registry import MODELS
from .runtime_config import LoadFromSpec


def load_initial_weights(model: nn.Module, spec: LoadFromSpec) -> LoadReport:
    """Load ``spec.path`` into ``model`` (after its ``init_weights``) and print the report.

    Strict specs must match every key and shape; non-strict ones copy the tensors whose
    names and shapes match and leave the rest as initialised (mmcv's ``load_from``).

    Returns:
        What was loaded, skipped (shape), missing and unexpected, per top-level module.
    """
    report = load_matching_checkpoint(model, spec.path, strict=spec.strict)
    mode = "strict" if spec.strict else "non-strict: matching names and shapes only"
    rank_zero_info(f"load_from ({mode}): {report.summary()}")
    return report


def state_dict_shapes(source: str | Path) -> dict[str, tuple[int, ...]]:
    """Keys and shapes of a config's model or of a checkpoint file.

    Args:
        source: a ``.py`` config (its ``model`` is built with random weights; no checkpoint is
            read, ``init_weights`` is not called) or a checkpoint file (read memory-mapped).
    """
    source = Path(source)
    if source.suffix == ".py":
        if not source.is_file():
            raise FileNotFoundError(f"config file not found: '{source}'")
        model = MODELS.build(Config.fromfile(str(source)).model)
        return {k: tuple(v.shape) for k, v in model.state_dict().items()}
    raw = read_checkpoint(source, mmap=True, allowed_globals=numpy_safe_globals())
    state_dict, _ = split_checkpoint(raw, source=f"checkpoint '{source}'")
    state_dict = revise_state_dict_keys(state_dict, ((r"^module\.", ""),))
    return {k: tuple(v.shape) for k, v in state_dict.items()}


def compare_load_from(receiver: str | Path, source: str | Path) -> LoadReport:
    """What ``load_from=<source>, load_from_strict=False`` gives the model of ``receiver``.

    Args:
        receiver: the config whose model would load (e.g. the R18 student config).
        source: a checkpoint file, or a config standing for its checkpoint (e.g. the R50
            config: its model's keys and shapes are those of its checkpoints).
    """
    return match_state_dicts(state_dict_shapes(receiver), state_dict_shapes(source), str(source))
