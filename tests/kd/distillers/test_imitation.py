"""Imitation checks: each distillation family, trained, brings a student closer to its teacher.

A tiny RayDN student (seed 0) learns from a fixed tiny RayDN teacher (other random weights)
on streams of random 2-camera frames. Each family's gap (kd/imitation_gaps.py) is measured
on held-out frames before and after a short training:

* with the family's losses alone, the gap must shrink substantially;
* with the detection loss on and the family at the loss weights of the shipped synthetic
  distillation config, the gap must still shrink.

The loss settings (weights, temperatures, scales) are read from
``projects/configs/synthetic/distill_raydn_r50_r18_synthetic.py`` (the BEV family from
``distill_raydn_r50_r18_bev_synthetic.py``), so the check follows the config; only the tap
paths and query counts are the tiny model's.
"""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from projects.mmdet3d_plugin.kd.bev.lifting import BEVLifting
from projects.mmdet3d_plugin.kd.imitation_gaps import bev_gap, feature_gap, output_gap, point_set_gap
from projects.mmdet3d_plugin.kd.recorders.tap_manager import TapManager
from projects.mmdet3d_plugin.registry import MODELS
from projects.mmdet3d_plugin.paths import REPO_ROOT

SYNTHETIC = REPO_ROOT / "projects/configs/synthetic/distill_raydn_r50_r18_synthetic.py"
CONFIGS = {"bev": REPO_ROOT / "projects/configs/synthetic/distill_raydn_r50_r18_bev_synthetic.py"}
LAST = 1  # tiny RayDN: 2 decoder layers
QUERIES = 12  # 8 learnable + 4 propagated
DFA = f"pts_bbox_head.transformer.decoder.layers.{LAST}.attentions.1"
TAP_PATHS = {
    **{f"fpn_{i}": (f"img_neck.fpn_convs.{i}.conv", 0) for i in range(4)},
    "points": (f"{DFA}.key_points", 0),
    "weights": (f"{DFA}.aggregation_weights", 0),
    "feats": (f"pts_bbox_head.transformer.decoder.layers.{LAST}", 0),
    "cls": ("pts_bbox_head.cls_branches.0", LAST),
    "box": ("pts_bbox_head.box_codes", LAST),
}
FAMILY_TYPES = {"feature": ("BalancedKLLoss",), "query": ("QueryFieldLoss",),
                "output": ("OutputDistillLoss", "OutputRelationLoss"), "bev": ("BEVFeatureLoss",)}
LIFTING_ARGS = ("pc_range", "bev_size", "num_heights", "height_reduction")


def _taps() -> dict:
    return {f"{who[0]}_{name}": dict(model=who, path=path, call=call)
            for who in ("student", "teacher") for name, (path, call) in TAP_PATHS.items()}


def family_losses(family: str) -> dict:
    """The family's losses of the synthetic config, re-pointed at the tiny model."""
    losses = Config.fromfile(str(CONFIGS.get(family, SYNTHETIC))).model.distill_losses.to_dict()
    chosen = {name: cfg for name, cfg in losses.items() if cfg["type"] in FAMILY_TYPES[family]}
    assert chosen, f"the synthetic config has no {family} loss"
    for cfg in chosen.values():
        if "num_queries" in cfg:
            cfg["num_queries"] = QUERIES
    return chosen


def _gaps(family: str, values: dict, batch: dict) -> float:
    """The family's gap on recorded teacher / student tensors (eval mode, no DN queries)."""
    if family == "feature":
        return sum(feature_gap(values[f"s_fpn_{i}"], values[f"t_fpn_{i}"]) for i in range(4)) / 4
    if family == "bev":
        gaps = [bev_gap(values[cfg["inputs"]["student"]], values[cfg["inputs"]["teacher"]],
                        BEVLifting(**{key: cfg[key] for key in LIFTING_ARGS}), batch["lidar2img"],
                        batch["pad_shape"]) for cfg in family_losses("bev").values()]
        return sum(gaps) / len(gaps)
    if family == "query":
        return point_set_gap(values["s_points"], values["t_points"])
    return output_gap(values["s_cls"], values["s_box"], values["t_cls"], values["t_box"], num_pairs=8)["center_m"]


def held_out_gap(distiller, family: str, make_batch) -> float:
    """Mean gap over 3 held-out 2-frame streams, both models in eval mode."""
    taps = TapManager({"student": distiller.student, "teacher": distiller.teacher}, _taps())
    distiller.eval()
    gaps = []
    with torch.no_grad():
        for stream in range(3):
            distiller.reset_memory()
            for frame in range(2):
                batch = make_batch(prev_exists=frame > 0, t=0.5 * frame, seed=1000 + 10 * stream + frame)
                with taps.recording():
                    distiller.teacher(batch, mode="predict")
                    distiller.student(batch, mode="predict")
                    values = {name: taps.pop(name) for name in taps.names}
                gaps.append(_gaps(family, values, batch))
    taps.remove()
    distiller.reset_memory()
    return sum(gaps) / len(gaps)


def train(distiller, steps: int, lr: float, with_detection: bool, make_batch) -> None:
    """Adam on the student (and loss modules) over a stream of 8-frame random sequences."""
    distiller.train()
    params = [p for p in distiller.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=lr)
    distill_keys = {f"loss_{name}" for name in distiller.distill_losses}
    for step in range(steps):
        distiller.set_training_progress(step, steps)
        batch = make_batch(prev_exists=step % 8 > 0, t=0.5 * (step % 8), seed=step % 24)
        losses = distiller(batch, mode="loss")
        terms = [v for k, v in losses.items() if k in distill_keys or (with_detection and "loss" in k)]
        optimizer.zero_grad()
        torch.stack(terms).sum().backward()
        torch.nn.utils.clip_grad_norm_(params, 35.0)
        optimizer.step()


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: the trained students depend on the float summation order, which
    changes with the thread count (the outputs family's ratio: 0.50 on one thread, 0.62 on two)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def imitation_teacher(tiny, tmp_path: Path) -> Path:
    return tiny.save(tiny.raydn(), tmp_path / "teacher.pth", seed=7)


def build(tiny, teacher_ckpt: Path, losses: dict) -> object:
    inputs = {name: {arg: src for arg, src in cfg["inputs"].items()} for name, cfg in losses.items()}
    used = {src for names in inputs.values() for src in names.values() if not src.startswith("batch.")}
    torch.manual_seed(0)
    return MODELS.build(dict(type="HarmoDistiller", teacher_cfg=tiny.raydn(), teacher_ckpt=str(teacher_ckpt),
                             student_cfg=tiny.raydn(),
                             taps={k: v for k, v in _taps().items() if k in used},
                             distill_losses=copy.deepcopy(losses)))


CASES: dict[str, tuple[int, float, float]] = {
    # family: (training steps, Adam learning rate, gap after / gap before must be below this).
    # Measured ratios (docs/distillation.md): feature 0.22, query 0.52, output 0.50 (0.50-0.69
    # over thread counts and schedules: the outputs family is the slowest to close its gap).
    "feature": (80, 1e-3, 0.5),
    "query": (120, 1e-3, 0.6),
    "output": (160, 2e-3, 0.75),
    # bev: 0.36 after 15 steps; kept short, the test must stay CPU-fast.
    "bev": (15, 1e-3, 0.6),
}


#: The BEV MSE's configured weight (0.027) gives it 25 % of the detection gradient on the neck
#: with the *trained* synthetic teacher, whose FPN maps are far larger than a random teacher's
#: (1390 % at 1.5 there, 16.5 % at 1.0 with random weights; tools/kd_gradients.py, see the
#: config). Next to the random tiny teacher here the same 25 % share is weight 1.5, so the
#: check runs the family at its configured *share*, not at a weight tuned to another teacher.
RANDOM_TEACHER_WEIGHTS = {"bev": 1.5}


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(CASES))
def test_family_alone_closes_its_gap(family: str, tiny, imitation_teacher: Path) -> None:
    steps, lr, ratio = CASES[family]
    distiller = build(tiny, imitation_teacher, family_losses(family))
    before = held_out_gap(distiller, family, tiny.batch)
    train(distiller, steps, lr, False, tiny.batch)
    after = held_out_gap(distiller, family, tiny.batch)
    assert after < ratio * before, f"{family}: held-out gap {before:.4f} -> {after:.4f}"


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(CASES))
def test_family_at_configured_weights_closes_its_gap_next_to_detection(family: str, tiny,
                                                                      imitation_teacher: Path) -> None:
    steps, lr, _ = CASES[family]
    losses = family_losses(family)
    for cfg in losses.values():
        cfg["loss_weight"] = RANDOM_TEACHER_WEIGHTS.get(family, cfg["loss_weight"])
    distiller = build(tiny, imitation_teacher, losses)
    before = held_out_gap(distiller, family, tiny.batch)
    train(distiller, steps, lr, True, tiny.batch)
    after = held_out_gap(distiller, family, tiny.batch)
    assert after < before, f"{family}: held-out gap {before:.4f} -> {after:.4f} with detection on"


