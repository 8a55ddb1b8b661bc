"""Gradient shares of a distiller's terms: ``python tools/kd_gradients.py DISTILL_CONFIG``.

Over the first ``--batches`` training batches (the order a run with ``--seed`` sees them),
prints each term's value and gradient norm on the student's backbone, neck, 3D head, 2D
head, adapters and loss modules — the detection loss (all of the student's own losses), every
distillation loss and every loss family (``family:<name>``, the sum of the family's losses) —
and each norm as a
share of the detection loss's on the same part. No parameter is changed. With
``--target-share family=part:share`` (e.g. ``feature=neck:0.5``) it also prints the loss
weights that would give that family that share (every loss of the family scaled by the same
factor). Writes a JSON report (``--out``).

    python tools/kd_gradients.py projects/configs/synthetic/distill_raydn_r50_r18_synthetic.py \\
        --teacher-ckpt work_dirs/teacher/latest.pth --batches 8 --target-share output=head:0.5
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import lightning as L
from mmengine.config import DictAction
from tqdm import tqdm

import projects.mmdet3d_plugin  # noqa: F401  (registers every module)
from harmodistill_tools.ablation import loss_families
from projects.mmdet3d_plugin.core.checkpoint import load_checkpoint
from projects.mmdet3d_plugin.engine.runner import build_model, build_train_loader, load_config
from projects.mmdet3d_plugin.kd.gradient_shares import (DETECTION, PARTS, shares_table, suggest_weights,
                                                        summarise, term_gradients)


FAMILY = "family:"  # prefix of a family's term (the sum of its losses) in the report


def parse_targets(items: list[str], families: dict[str, list[str]]) -> dict[str, tuple[str, float]]:
    """``['feature=neck:0.5']`` → ``{'feature': ('neck', 0.5)}`` (checked against the families)."""
    targets = {}
    for item in items:
        try:
            family, rest = item.split("=", 1)
            part, share = rest.split(":", 1)
            targets[family] = (part, float(share))
        except ValueError:
            raise SystemExit(f"--target-share {item!r}: expected FAMILY=PART:SHARE, e.g. feature=neck:0.5")
        if family not in families or part not in PARTS:
            raise SystemExit(f"--target-share {item!r}: family must be one of {sorted(families)} and part "
                             f"one of {sorted(PARTS)}")
    return targets


def main(argv: list[str] | None = None) -> dict:
    """Run the measurement; returns the JSON report (also written to ``--out``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="a distillation config (model.type='HarmoDistiller')")
    parser.add_argument("--teacher-ckpt", help="the teacher's weights (default: the config's model.teacher_ckpt)")
    parser.add_argument("--checkpoint", help="a distiller checkpoint to measure instead of the initial student")
    parser.add_argument("--batches", type=int, default=8, help="training batches measured (default 8)")
    parser.add_argument("--progress", type=float, default=0.0,
                        help="training progress in [0, 1] passed to scheduled losses (default 0)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--target-share", nargs="+", default=[], metavar="FAMILY=PART:SHARE")
    parser.add_argument("--out", help="JSON report (default work_dirs/kd_gradients/<config name>.json)")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, default={})
    args = parser.parse_args(argv)
    if args.batches <= 0 or not 0.0 <= args.progress <= 1.0:
        raise SystemExit("--batches must be positive and --progress in [0, 1]")
    cfg = load_config(args.config, {**args.cfg_options,
                                    **({"model.teacher_ckpt": args.teacher_ckpt} if args.teacher_ckpt else {})})
    if cfg.model.get("type") != "HarmoDistiller":
        raise SystemExit(f"{args.config} is not a distillation config (model.type={cfg.model.get('type')!r})")
    families = loss_families(cfg.model.distill_losses)
    enabled = cfg.model.get("enabled_losses")
    families = {f: [n for n in names if enabled is None or n in enabled] for f, names in families.items()}
    families = {f: names for f, names in families.items() if names}
    targets = parse_targets(args.target_share, families)

    L.seed_everything(args.seed, verbose=False)
    distiller = build_model(cfg)
    if args.checkpoint:
        load_checkpoint(distiller, args.checkpoint, strict=True)
    max_iters = int(cfg.runner.max_iters)
    distiller.set_training_progress(round(args.progress * max_iters), max_iters)
    steps = []
    loader = build_train_loader(cfg, args.seed)
    for batch, _ in tqdm(zip(loader, range(args.batches)), total=args.batches, desc="batches"):
        steps.append(term_gradients(distiller, batch, groups={FAMILY + f: names for f, names in families.items()}))
    reports = summarise(steps)
    parts = [p for p in PARTS if any(r.norms.get(p, 0.0) > 0 for r in reports.values())]
    print(shares_table(reports, parts))

    loss_weights = {name: float(cfg.model.distill_losses[name].get("loss_weight", 1.0))
                    for names in families.values() for name in names}
    suggested = {}
    for family, target in targets.items():
        factor = suggest_weights(reports, {FAMILY + family: 1.0}, {FAMILY + family: target})[FAMILY + family]
        suggested[family] = {name: loss_weights[name] * factor for name in families[family]}
        print(f"{family}: share {target[1]:.0%} on {target[0]} -> loss weights x{factor:.3g}: "
              + ", ".join(f"{n}={w:.4g}" for n, w in suggested[family].items()))
    out = Path(args.out or Path("work_dirs") / "kd_gradients" / f"{Path(args.config).stem}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    report = dict(
        config=args.config, checkpoint=args.checkpoint, teacher_ckpt=cfg.model.teacher_ckpt,
        batches=args.batches, progress=args.progress, seed=args.seed, families=families,
        loss_weights=loss_weights, suggested=suggested,
        terms={name: dict(value=r.value, norms=r.norms, shares=r.shares, per_batch=r.per_batch)
               for name, r in reports.items()},
    )
    out.write_text(json.dumps(report, indent=2))
    print(f"report: {out} ({DETECTION} = the student's own losses; share = a term's gradient norm / "
          f"{DETECTION}'s on the same part)")
    return report


if __name__ == "__main__":
    main()
