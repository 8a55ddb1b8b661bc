"""Draw predictions and ground truth of the first N samples of a config's dataset.

    python tools/visualize.py CONFIG CKPT --samples 8 --out work_dirs/vis [--score-thr 0.3]
        [--split val] [--cfg-options data.val.data_root=... data.val.ann_file=...]

For each sample, ``<out>/<index>_<token>.png`` shows the six camera images (the original
files, so not normalised) and a BEV panel with every box coloured by whether it is right:
matched predictions (true positives) and their ground truth, false positives, missed ground
truth (docs/visualization.md has the legend). For a distiller config (HarmoDistiller) the
boxes are the student's and ``<out>/<index>_<token>_query_fields.png`` shows the teacher's
and the student's query receptive fields side by side; the teacher comes from the distiller
checkpoint itself (its ``teacher.*`` keys), so ``model.teacher_ckpt`` need not exist. A
distiller with BEV feature losses (``BEVFeatureLoss``) also gets one
``<out>/<index>_<token>_bev_<loss>.png`` per such loss: the teacher's and the student's FPN maps
lifted into BEV by the loss itself, their disagreement and the DistillBEV regions that weigh
every cell. Samples are run in dataset order so the temporal memory streams as in testing.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch
from mmengine.config import DictAction
from PIL import Image

from projects.mmdet3d_plugin.core.checkpoint import load_checkpoint, numpy_safe_globals
from projects.mmdet3d_plugin.datasets.collate import collate_samples
from projects.mmdet3d_plugin.engine.runner import build_dataset, build_model, load_config
from projects.mmdet3d_plugin.kd.distillers import HarmoDistiller, build_distiller_from_checkpoint
from projects.mmdet3d_plugin.kd.distillers.teacher_inputs import teacher_batch
from projects.mmdet3d_plugin.visualization.bev_features import render_bev_features
from projects.mmdet3d_plugin.visualization.query_fields import record_query_field, render_query_fields
from projects.mmdet3d_plugin.visualization.render import SampleBoxes, SampleView, render_sample


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config")
    parser.add_argument("checkpoint")
    parser.add_argument("--samples", type=int, default=4, help="first N samples of the split")
    parser.add_argument("--out", required=True, help="output folder for the PNGs")
    parser.add_argument("--score-thr", type=float, default=0.3, help="smallest drawn prediction score")
    parser.add_argument("--split", default="val", choices=("train", "val", "test"), help="data split")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, default={},
                        help="override config keys, e.g. data.val.data_root=data/synthetic_quick/ "
                             "data.val.ann_file=data/synthetic_quick/nuscenes2d_temporal_infos_val.pkl")
    return parser.parse_args(argv)


def build_detector(cfg: Any, checkpoint: str) -> Any:
    """Build ``cfg.model``, load ``checkpoint`` strictly (numpy meta allowed), eval mode.

    A distiller takes its teacher from the checkpoint's ``teacher.*`` keys
    (:func:`build_distiller_from_checkpoint`), not from ``model.teacher_ckpt``.
    """
    if cfg.model.get("type") == "HarmoDistiller":
        return build_distiller_from_checkpoint(cfg.model.to_dict(), checkpoint)
    model = build_model(cfg, init_weights=False)
    load_checkpoint(model, checkpoint, strict=True, allowed_globals=numpy_safe_globals())
    return model.eval()


def _boxes(pred: dict) -> SampleBoxes:
    return SampleBoxes(*(pred[key].detach().cpu().numpy() for key in ("boxes_3d", "labels_3d", "scores_3d")))


def _ground_truth(dataset: Any, index: int) -> Optional[SampleBoxes]:
    """The sample's annotations, also when the dataset is built for testing (``test_mode``)."""
    if "gt_boxes" not in dataset.infos[index]:
        return None
    ann = dataset.get_ann_info(index)
    return SampleBoxes(np.asarray(ann["gt_bboxes_3d"]), np.asarray(ann["gt_labels_3d"]))


def _with_ground_truth(batch: dict, dataset: Any, index: int) -> dict:
    """The batch, with the sample's annotated boxes as ``gt_bboxes_3d`` when the split's
    pipeline does not collect them (testing), so the BEV regions can be drawn."""
    truth = _ground_truth(dataset, index)
    if "gt_bboxes_3d" in batch or truth is None:
        return batch
    return {**batch, "gt_bboxes_3d": [torch.as_tensor(truth.boxes, dtype=torch.float32)]}


def _bev_panels(model: HarmoDistiller, names: Sequence[str], recorded: dict, batch: dict, out_dir: Path,
                stem: str, title: str) -> list[Path]:
    """One PNG per BEV feature loss: its lifted teacher / student maps and regions (sample 0)."""
    written = []
    for name in names:
        loss = model.distill_losses[name]
        with torch.no_grad():
            student, teacher, labels = loss.bev_maps(**model.loss_inputs(name, recorded, batch))
        written.append(render_bev_features(
            teacher[0].float().cpu().numpy(), student[0].float().cpu().numpy(),
            None if labels is None else labels[0].cpu().numpy(), out_dir / f"{stem}_bev_{name}.png",
            loss.lifting.pc_range, title=f"{title}: distill_losses.{name}"))
    return written


def visualize_sample(model: Any, dataset: Any, index: int, out_dir: Path, score_thr: float) -> list[Path]:
    """Run one sample through ``model`` and write its PNG(s)."""
    info = dataset.get_data_info(index)
    batch = collate_samples([dataset[index]])
    written = []
    stem = f"{index:04d}_{info['sample_idx']}"
    if isinstance(model, HarmoDistiller):
        bev_losses = [name for name, loss in model.distill_losses.items() if hasattr(loss, "bev_maps")]
        needed = sorted({tap for name in bev_losses for tap in model.loss_taps(name)})
        with model.taps.recording():
            preds, student_field = record_query_field(model.student, batch)
            _, teacher_field = record_query_field(model.teacher, teacher_batch(batch, model.teacher_input_size))
            recorded = {tap: model.taps.pop(tap) for tap in needed}
        pc_range = model.student.pts_bbox_head.pc_range.tolist()
        written.append(render_query_fields(teacher_field, student_field, out_dir / f"{stem}_query_fields.png",
                                           pc_range, title=info["sample_idx"]))
        if bev_losses:
            written += _bev_panels(model, bev_losses, recorded, _with_ground_truth(batch, dataset, index),
                                   out_dir, stem, info["sample_idx"])
    else:
        with torch.no_grad():
            preds = model(batch, mode="predict")
    images = [np.asarray(Image.open(path).convert("RGB")) for path in info["img_filename"]]
    view = SampleView(images, np.stack(info["lidar2img"]), _boxes(preds[0]), _ground_truth(dataset, index),
                      list(dataset.classes), cam_names=list(info["cam_names"]),
                      title=f"{info['sample_idx']} (scene {info['scene_token']}, frame {info['frame_idx']})")
    written.insert(0, render_sample(view, out_dir / f"{stem}.png", score_thr=score_thr))
    return written


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if args.samples < 1:
        raise SystemExit(f"--samples must be >= 1, got {args.samples}")
    cfg = load_config(args.config, args.cfg_options)
    model = build_detector(cfg, args.checkpoint)
    dataset = build_dataset(cfg, args.split)
    out_dir = Path(args.out)
    for index in range(min(args.samples, len(dataset))):
        for path in visualize_sample(model, dataset, index, out_dir, args.score_thr):
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
