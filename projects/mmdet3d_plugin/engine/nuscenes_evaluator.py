"""Evaluate a split's predictions with the official nuScenes evaluator."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from ..datasets.evaluation.nusc_eval import evaluate_submission, load_nuscenes
from ..datasets.evaluation.submission import results_to_submission, save_submission


class NuScenesEvaluator:
    """Predictions of one split → submission JSON → ``DetectionEval`` metrics.

    Args:
        data_root: nuScenes root holding ``<version>/``.
        version: the tables' version (e.g. ``v1.0-mini``).
        infos: the info dicts of the evaluated split (every one must get a prediction).
        class_names: the classes ``labels_3d`` index.
        out_dir: where ``results_nusc.json`` and ``metrics.json`` are written.
    """

    def __init__(
        self,
        data_root: str | Path,
        version: str,
        infos: Sequence[Mapping[str, Any]],
        class_names: Sequence[str],
        out_dir: str | Path,
    ) -> None:
        self.data_root = Path(data_root)
        self.version = version
        self.infos = list(infos)
        self.class_names = tuple(class_names)
        self.out_dir = Path(out_dir)
        self._nusc = None

    def __call__(self, predictions: Sequence[Mapping[str, Any]], tokens: Sequence[str]) -> dict[str, Any]:
        """Evaluate ``predictions`` (one per token, the model's ``predict`` output)."""
        submission = results_to_submission(predictions, tokens, self.infos, self.class_names)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        result_path = save_submission(submission, self.out_dir / "results_nusc.json")
        if self._nusc is None:
            self._nusc = load_nuscenes(self.data_root, self.version)
        return evaluate_submission(
            result_path, self.data_root, self.version, out_dir=self.out_dir, nusc=self._nusc
        )
