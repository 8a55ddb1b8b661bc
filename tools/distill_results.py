"""Does distillation pay? Plain vs distilled students over seeds, with an ablation.

``python tools/distill_results.py --teacher-ckpt work_dirs/raydn_r50_synthetic/latest.pth
[--seeds 0 1 2] [--iters N] [--variants plain all inherit losses feature query output]``

For every seed, trains the student alone (``plain``), distilled with the whole config
(``all``: every loss and the inheritance of teacher weights), with one family of losses only
(``feature``: feature maps, ``query``: 3D-query receptive field / attention, ``output``:
decoder outputs), with every loss and no inheritance (``losses``) or with the inheritance
only (``inherit``), all under the same iteration budget, and takes the official nuScenes
metrics of the final evaluation on the held-out split. Variants run one after the other,
each over all seeds. Each run is a ``tools/train.py`` / ``tools/distillation.py`` command
printed before it runs; finished runs are reused, interrupted ones resumed. Writes ``WORK/results.json`` (every run) and
``WORK/results.md`` (mean ± std and the paired difference to ``plain`` over the requested
runs; ``results.json`` keeps the runs of earlier invocations too) and ``WORK/results.png``
(every run as a dot, mean ± std per variant). ``--jobs 2`` trains two runs at once with one
thread each. ``--labelled-fraction 0.25`` runs the label-scarce setting: every student (plain
or distilled) sees ground truth on a fixed 25 % of the training frames
(``data.train.labelled_fraction``), while the teacher's signal reaches it on every frame; a
work directory holds one setting (``WORK/settings.json``), so give each setting its own.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from harmodistill_tools.ablation import loss_families, results_table
from harmodistill_tools.steps import data_options, run_step, schedule_options
from projects.mmdet3d_plugin.core.checkpoint import read_checkpoint
from projects.mmdet3d_plugin.engine.runner import load_config
from projects.mmdet3d_plugin.paths import REPO_ROOT
from projects.mmdet3d_plugin.visualization.seed_plot import plot_seed_results

CONFIGS = REPO_ROOT / "projects" / "configs" / "synthetic"
STUDENT_CFG = CONFIGS / "raydn_r18_synthetic.py"
DISTILL_CFG = CONFIGS / "distill_raydn_r50_r18_synthetic.py"
DEFAULT_ITERS = 400  # the budget of docs/results.md


def variant_options(distill_cfg: Path, variants: list[str] | None) -> dict[str, list[str] | None]:
    """Variant → the ``--cfg-options`` it adds to the distillation config (``None``: plain).

    ``variants=None`` gives every variant the config has. ``all`` is the config as written
    (every loss, inheritance if it has any); a loss family keeps only that family's losses
    and inherits nothing; ``inherit`` keeps only the inheritance (no loss); ``losses`` keeps
    every loss and inherits nothing.
    """
    model = load_config(distill_cfg).model
    families = loss_families(model.distill_losses)
    known = ["plain", "all"] + (["inherit", "losses"] if model.get("inherit") else []) + sorted(families)
    chosen: dict[str, list[str] | None] = {}
    for variant in known if variants is None else variants:
        if variant not in known:
            raise SystemExit(f"unknown variant {variant!r}: use one of {', '.join(known)} "
                             f"(the loss families and inheritance of {distill_cfg.name})")
        if variant == "plain":
            chosen[variant] = None
        elif variant == "all":
            chosen[variant] = []
        elif variant == "inherit":
            chosen[variant] = ["model.enabled_losses=[]"]
        elif variant == "losses":
            chosen[variant] = ["model.inherit=[]"]
        else:
            chosen[variant] = [f"model.enabled_losses=[{','.join(families[variant])}]", "model.inherit=[]"]
    return chosen


def finished(run_dir: Path, iters: int) -> dict[str, float] | None:
    """The final metrics of a run that reached ``iters`` iterations, else ``None``."""
    metrics, latest = run_dir / "eval" / "metrics.json", run_dir / "latest.pth"
    if not (metrics.is_file() and latest.is_file()):
        return None
    if read_checkpoint(latest, mmap=True).get("global_step") != iters:
        return None
    values = json.loads(metrics.read_text())
    return {"NDS": values["NDS"], "mAP": values["mAP"]}


def check_settings(path: Path, settings: dict) -> None:
    """Record the study's settings in ``path``, or refuse a work dir that holds another setting
    (its finished runs would be reused as if they had been trained with this one)."""
    if path.is_file():
        recorded = json.loads(path.read_text())
        if recorded != settings:
            raise SystemExit(f"{path.parent} holds runs of the setting {recorded}, not {settings}; "
                             "use another --work-dir for this setting")
        return
    path.write_text(json.dumps(settings, indent=2) + "\n")


def train_command(variant_opts: list[str] | None, seed: int, iters: int, run_dir: Path,
                  args: argparse.Namespace) -> list[str]:
    """The ``tools/train.py`` (plain: ``variant_opts is None``) or ``tools/distillation.py`` command."""
    options = data_options(args.data_root) + schedule_options(iters)
    if args.labelled_fraction < 1.0:
        options.append(f"data.train.labelled_fraction={args.labelled_fraction}")
    if variant_opts is None:
        tool, config = "tools/train.py", args.student_config
    else:
        tool, config = "tools/distillation.py", args.distill_config
        options += [f"model.teacher_ckpt={args.teacher_ckpt}", *variant_opts]
    cmd = [sys.executable, tool, str(config), "--work-dir", str(run_dir), "--seed", str(seed)]
    if (run_dir / "latest.pth").is_file():
        cmd.append("--resume")
    return cmd + ["--cfg-options", *options]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher-ckpt", type=Path, required=True, help="the trained teacher (latest.pth)")
    parser.add_argument("--distill-config", type=Path, default=DISTILL_CFG)
    parser.add_argument("--student-config", type=Path, default=STUDENT_CFG)
    parser.add_argument("--data-root", type=Path, default=REPO_ROOT / "data" / "synthetic")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--iters", type=int, default=DEFAULT_ITERS, help="iterations of every student")
    parser.add_argument("--variants", nargs="+",
                        help="default: plain, all, inherit and losses (if the config inherits), every loss family")
    parser.add_argument("--labelled-fraction", type=float, default=1.0,
                        help="share of training frames with ground truth (label-scarce setting; default 1)")
    parser.add_argument("--work-dir", type=Path, default=REPO_ROOT / "work_dirs" / "distill_results")
    parser.add_argument("--jobs", type=int, default=1,
                        help="runs trained at once, each with cpu_count/jobs threads (2 on 2 cores: "
                             "1.4x the throughput of one 2-thread run)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if not args.teacher_ckpt.is_file():
        raise SystemExit(f"teacher checkpoint {args.teacher_ckpt} not found; train it with "
                         f"python tools/train.py {CONFIGS / 'raydn_r50_synthetic.py'} (or tools/demo.py)")
    if not 0.0 < args.labelled_fraction <= 1.0:
        raise SystemExit(f"--labelled-fraction must be in (0, 1], got {args.labelled_fraction}")
    if not (args.data_root / "nuscenes2d_temporal_infos_val.pkl").is_file():
        raise SystemExit(f"no info files under {args.data_root}; generate the world first "
                         "(python tools/create_synthetic_nuscenes.py, tools/create_data_nusc.py)")
    args.teacher_ckpt, args.data_root = args.teacher_ckpt.resolve(), args.data_root.resolve()
    variants = variant_options(args.distill_config, args.variants)
    work = args.work_dir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    check_settings(work / "settings.json", {"labelled_fraction": args.labelled_fraction})
    records = work / "results.json"
    previous = json.loads(records.read_text()) if records.is_file() else {}
    runs: dict[str, dict[int, dict[str, float]]] = {variant: {} for variant in variants}
    pending = []
    for variant in variants:  # variant by variant, so the first comparison completes first
        for seed in args.seeds:
            result = finished(work / variant / f"seed{seed}", args.iters)
            if result is None:
                pending.append((variant, seed))
            else:
                runs[variant][seed] = {**previous.get(variant, {}).get(str(seed), {}), **result}
    threads = {"OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // args.jobs))}

    def run_one(variant: str, seed: int) -> tuple[str, int, dict[str, float]]:
        run_dir = work / variant / f"seed{seed}"
        print(f"\n[{variant}, seed {seed}]", flush=True)
        seconds = run_step(train_command(variants[variant], seed, args.iters, run_dir, args),
                           run_dir / "run.log", env=threads)
        result = finished(run_dir, args.iters)
        if result is None:
            raise SystemExit(f"{run_dir} finished without a final evaluation; see {run_dir / 'run.log'}")
        return variant, seed, {**result, "train_s": seconds, "jobs": args.jobs}

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for done in as_completed([pool.submit(run_one, variant, seed) for variant, seed in pending]):
            variant, seed, result = done.result()
            runs[variant][seed] = result
            previous.setdefault(variant, {})[str(seed)] = result
            records.write_text(json.dumps(previous, indent=2))
    runs = {variant: dict(sorted(seeds.items())) for variant, seeds in runs.items()}
    table = results_table(runs, baseline="plain" if "plain" in runs else next(iter(runs)))
    (work / "results.md").write_text(table + "\n")
    picture = plot_seed_results(runs, work / "results.png",
                                title=f"{args.distill_config.stem}: {args.iters} iterations per run")
    print("\n" + table + f"\n\nrun records: {records}; picture: {picture}")


if __name__ == "__main__":
    main()
