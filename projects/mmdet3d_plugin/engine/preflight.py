"""Checks run before a training or test run creates anything: the data is there and readable.

A wrong ``data_root``, a missing or corrupt image, or missing nuScenes tables would otherwise
surface at the first batch (after the work dir's ``logs/`` and ``tensorboard/`` exist) or,
for the tables, only after a whole inference pass. :func:`preflight` reads what the run will
read first, cheaply, and raises an error naming the split, the file and the config key.
The info file itself is read (and its errors named) when the dataset is built.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..datasets.evaluation.nusc_eval import check_tables
from ..datasets.pipelines.loading import read_bgr_image

DEFAULT_NUM_SAMPLES = 1


def _where(dataset: Any, split: str) -> str:
    """``data.<split>`` with its data_root and ann_file, for messages."""
    return (f"data.{split} (data_root={getattr(dataset, 'data_root', None)!r}, "
            f"ann_file={getattr(dataset, 'ann_file', None)!r})")


def check_images(dataset: Any, split: str, num_samples: int = DEFAULT_NUM_SAMPLES) -> int:
    """Every camera image of the first ``num_samples`` samples exists and decodes.

    Args:
        dataset: a dataset with ``get_data_info(index) -> dict(img_filename=[N paths])``
            (``CustomNuScenesDataset``); other datasets are not checked.
        split: ``train``, ``val`` or ``test`` (for messages).
        num_samples: how many leading samples to check.

    Returns:
        the number of images checked.

    Raises:
        FileNotFoundError: images are missing (how many, the first path, the data_root).
        OSError: an image does not decode (its path).
    """
    if not hasattr(dataset, "get_data_info"):
        return 0
    paths = [str(path) for index in range(min(num_samples, len(dataset)))
             for path in dataset.get_data_info(index)["img_filename"]]
    missing = [path for path in paths if not Path(path).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{_where(dataset, split)}: {len(missing)} of the {len(paths)} camera images of the first "
            f"{num_samples} sample(s) do not exist, e.g. '{missing[0]}'. The info file's image paths are "
            f"resolved against data.{split}.data_root: set it to the nuScenes root that holds samples/ "
            f"(the one the info file was created from)."
        )
    for path in paths:
        try:
            read_bgr_image(path, color_type="color")
        except OSError as err:
            raise OSError(f"{_where(dataset, split)}: {err}") from err
    return len(paths)


def preflight(dataset: Any, split: str, *, evaluate: bool, num_samples: int = DEFAULT_NUM_SAMPLES) -> None:
    """Check ``dataset`` before a run: its first images and, if ``evaluate``, the nuScenes tables.

    Raises:
        FileNotFoundError / OSError: see :func:`check_images`; or the evaluator's tables under
            ``data_root/version`` are missing (see ``nusc_eval.check_tables``).
        ValueError: the version is unknown or has no evaluation split.
    """
    check_images(dataset, split, num_samples)
    if evaluate:
        try:
            check_tables(dataset.data_root, dataset.version)
        except (FileNotFoundError, ValueError) as err:
            raise type(err)(f"data.{split}: {err}") from err
