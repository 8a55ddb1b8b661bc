"""The end-to-end demo on the generated world: teacher → distilled and plain R18 → evaluation.

``python tools/demo.py [--quick] [--work-dir work_dirs/demo]`` runs, with the project's own
tools and printing each command so that any step can be rerun alone (``WORK_DIR/demo.log``
holds every command, ``$ ...``, followed by its output):

1. generate the nuScenes-format world and convert it to info files (skipped when present);
2. train the synthetic RayDN R50 teacher from scratch (reused when its checkpoint exists,
   skipped when ``--teacher-ckpt`` gives a trained one);
3. distill it into the R18 student (``distill_raydn_r50_r18_synthetic.py``);
4. train the same R18 without distillation under the same iteration budget;
5. convert the distilled checkpoint to a plain student checkpoint;
6. evaluate teacher, distilled student and plain student with the official nuScenes
   evaluator, time their latency in one process, interleaved frame by frame
   (``tools/benchmark_compare.py``, ``--latency-frames`` timed frames each), and print a table
   (NDS, mAP, latency median and p90, parameters). Below ``MIN_LATENCY_FRAMES`` timed frames
   (``--quick``) the latency column is left out: so few frames say nothing about speed.

The default budget (teacher 300 iterations, each student 150) finishes in under 25 minutes on
a 2-core CPU; ``--quick`` uses a small world and a few iterations per model (a smoke run of
every path, under 5 minutes). The seeds-and-ablation study of docs/results.md trains longer
(``tools/distill_results.py``).
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from harmodistill_tools.steps import data_options, run_step, schedule_options
from projects.mmdet3d_plugin.paths import REPO_ROOT

CONFIGS = REPO_ROOT / "projects" / "configs" / "synthetic"
TEACHER_CFG = CONFIGS / "raydn_r50_synthetic.py"
STUDENT_CFG = CONFIGS / "raydn_r18_synthetic.py"
DISTILL_CFG = CONFIGS / "distill_raydn_r50_r18_synthetic.py"


@dataclass(frozen=True)
class Budget:
    """World size and iterations of one demo run."""

    train_scenes: int
    val_scenes: int
    samples_per_scene: int
    teacher_iters: int
    student_iters: int
    latency_frames: int


DEFAULT = Budget(train_scenes=8, val_scenes=2, samples_per_scene=40, teacher_iters=300,
                 student_iters=150, latency_frames=20)
QUICK = Budget(train_scenes=2, val_scenes=1, samples_per_scene=8, teacher_iters=20,
               student_iters=10, latency_frames=3)
#: Fewer timed frames per model than this, and the table shows no latency.
MIN_LATENCY_FRAMES = 10
#: Untimed frames per model before the latency is timed.
LATENCY_WARMUP = 2


def run_logged(cmd: list[str], log: Path) -> float:
    """Write ``$ <cmd>`` (shell-quoted, as it can be pasted) into ``log``, then :func:`run_step` it.

    ``demo.log`` thus holds every command the demo ran, each followed by its output.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as handle:
        handle.write(f"\n$ {shlex.join(cmd)}\n")
    return run_step(cmd, log)


def prepare_world(budget: Budget, data_root: Path, log: Path) -> None:
    if (data_root / "nuscenes2d_temporal_infos_val.pkl").is_file():
        print(f"\n[1] world: reusing {data_root}")
        return
    print("\n[1] world: generate and convert")
    run_logged([sys.executable, "tools/create_synthetic_nuscenes.py", "--out", str(data_root),
         "--train-scenes", str(budget.train_scenes), "--val-scenes", str(budget.val_scenes),
         "--samples-per-scene", str(budget.samples_per_scene)], log)
    run_logged([sys.executable, "tools/create_data_nusc.py", "--root-path", str(data_root), "--out-dir",
         str(data_root), "--extra-tag", "nuscenes2d", "--version", "v1.0-mini"], log)


def check_teacher_ckpt(given: Path | None) -> Path | None:
    """``--teacher-ckpt`` resolved, or ``SystemExit`` before any step when the file is missing."""
    if given is not None and not given.is_file():
        raise SystemExit(f"--teacher-ckpt {given} not found; train one with "
                         f"python tools/train.py {TEACHER_CFG} (docs/results.md)")
    return None if given is None else given.resolve()


def train_teacher(budget: Budget, data_root: Path, work: Path, log: Path, given: Path | None = None) -> Path:
    if given is not None:
        print(f"\n[2] teacher: using {given}")
        return given
    ckpt = work / "teacher" / "latest.pth"
    if ckpt.is_file():
        print(f"\n[2] teacher: reusing {ckpt}")
        return ckpt
    print("\n[2] teacher: RayDN R50 from scratch")
    run_logged([sys.executable, "tools/train.py", str(TEACHER_CFG), "--work-dir", str(work / "teacher"),
         "--cfg-options", *data_options(data_root),
         *schedule_options(budget.teacher_iters, evaluate=False)], log)
    return ckpt


def train_students(budget: Budget, data_root: Path, work: Path, teacher: Path, log: Path) -> dict[str, Path]:
    print("\n[3] distilled R18 (teacher frozen)")
    run_logged([sys.executable, "tools/distillation.py", str(DISTILL_CFG), "--work-dir", str(work / "distilled"),
         "--cfg-options", f"model.teacher_ckpt={teacher}", *data_options(data_root),
         *schedule_options(budget.student_iters, evaluate=False)], log)
    print("\n[4] plain R18, same budget")
    run_logged([sys.executable, "tools/train.py", str(STUDENT_CFG), "--work-dir", str(work / "plain"),
         "--cfg-options", *data_options(data_root),
         *schedule_options(budget.student_iters, evaluate=False)], log)
    print("\n[5] convert the distilled checkpoint to a plain student")
    student = work / "distilled" / "student.pth"
    run_logged([sys.executable, "tools/distill_convert.py", "--src_path", str(work / "distilled" / "latest.pth"),
         "--dst_path", str(student), "--config", str(STUDENT_CFG)], log)
    return {"distilled": student, "plain": work / "plain" / "latest.pth"}


def evaluate(name: str, config: Path, ckpt: Path, data_root: Path, work: Path, log: Path) -> dict[str, float]:
    """NDS and mAP of one model (``tools/test.py``, the official evaluator)."""
    out = work / "eval" / name
    run_logged([sys.executable, "tools/test.py", str(config), str(ckpt), "--eval", "bbox", "--out", str(out),
         "--cfg-options", *data_options(data_root)], log)
    metrics = json.loads((out / "metrics.json").read_text())
    return {"NDS": metrics["NDS"], "mAP": metrics["mAP"]}


def time_models(models: dict[str, tuple[Path, Path]], frames: int, data_root: Path, work: Path,
                log: Path) -> dict[str, dict[str, float]]:
    """Parameters of every model and, with at least :data:`MIN_LATENCY_FRAMES` frames, the
    median and p90 latency, all timed in one ``tools/benchmark_compare.py`` run (interleaved)."""
    out = work / "eval" / "latency.json"
    specs = [arg for name, (config, ckpt) in models.items() for arg in ("--model", name, str(config), str(ckpt))]
    run_logged([sys.executable, "tools/benchmark_compare.py", *specs, "--frames", str(frames),
                "--warmup", str(LATENCY_WARMUP),
                "--out", str(out), "--cfg-options", *data_options(data_root)], log)
    timing = json.loads(out.read_text())["models"]
    rows = {name: {"params_m": timing[name]["params"]["inference"] / 1e6} for name in models}
    if frames >= MIN_LATENCY_FRAMES:
        for name, row in rows.items():
            latency = timing[name]["latency"]
            row.update(latency_p50_ms=latency["p50_ms"], latency_p90_ms=latency["p90_ms"])
    return rows


def print_table(rows: dict[str, dict[str, float]], frames: int) -> None:
    """The results table; the latency column only when ``frames`` per model were enough."""
    latency = frames >= MIN_LATENCY_FRAMES
    head = "| model | NDS | mAP |" + (" latency ms, CPU: median (p90) |" if latency else "") + " params (M) |"
    print(f"\n{head}\n|{' --- |' * head.count(' |')}")
    for name, row in rows.items():
        cell = f" {row['latency_p50_ms']:.0f} ({row['latency_p90_ms']:.0f}) |" if latency else ""
        print(f"| {name} | {row['NDS']:.4f} | {row['mAP']:.4f} |{cell} {row['params_m']:.1f} |")
    if latency:
        print(f"Latency: the {len(rows)} models timed in one process, interleaved frame by frame, "
              f"{frames} frames each.")
    else:
        print(f"No latency column: only {frames} frames per model were timed (fewer than {MIN_LATENCY_FRAMES}), "
              f"too few for a median that means anything; rerun with --latency-frames {DEFAULT.latency_frames}.")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small world, few iterations: every path in minutes")
    parser.add_argument("--work-dir", default=None, help="default work_dirs/demo (work_dirs/demo_quick with --quick)")
    parser.add_argument("--data-root", default=None, help="default data/synthetic (data/synthetic_quick with --quick)")
    parser.add_argument("--teacher-iters", type=int, default=None, help="override the teacher's iterations")
    parser.add_argument("--student-iters", type=int, default=None, help="override each student's iterations")
    parser.add_argument("--latency-frames", type=int, default=None,
                        help=f"timed frames per model for the latency column (default {DEFAULT.latency_frames}, "
                             f"{QUICK.latency_frames} with --quick; fewer than {MIN_LATENCY_FRAMES}: no column)")
    parser.add_argument("--teacher-ckpt", type=Path, default=None,
                        help="a trained synthetic teacher to distill from instead of training one "
                             "(e.g. the 2500-iteration teacher of docs/results.md)")
    args = parser.parse_args()
    if args.latency_frames is not None and args.latency_frames < 1:
        parser.error(f"--latency-frames must be at least 1, got {args.latency_frames}")
    return args


def main() -> None:
    args = parse_args()
    args.teacher_ckpt = check_teacher_ckpt(args.teacher_ckpt)
    budget = QUICK if args.quick else DEFAULT
    budget = Budget(**{**budget.__dict__,
                       **({"teacher_iters": args.teacher_iters} if args.teacher_iters else {}),
                       **({"student_iters": args.student_iters} if args.student_iters else {}),
                       **({"latency_frames": args.latency_frames} if args.latency_frames else {})})
    suffix = "_quick" if args.quick else ""
    work = (REPO_ROOT / (args.work_dir or f"work_dirs/demo{suffix}")).resolve()
    data_root = (REPO_ROOT / (args.data_root or f"data/synthetic{suffix}")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    log = work / "demo.log"
    start = time.perf_counter()
    prepare_world(budget, data_root, log)
    teacher = train_teacher(budget, data_root, work, log, args.teacher_ckpt)
    students = train_students(budget, data_root, work, teacher, log)
    print("\n[6] official nuScenes evaluation and CPU latency")
    models = {"teacher R50": ("teacher", TEACHER_CFG, teacher),
              "R18 distilled": ("distilled", STUDENT_CFG, students["distilled"]),
              "R18 plain": ("plain", STUDENT_CFG, students["plain"])}
    rows = {name: evaluate(tag, config, ckpt, data_root, work, log) for name, (tag, config, ckpt) in models.items()}
    timing = time_models({name: (config, ckpt) for name, (_, config, ckpt) in models.items()},
                         budget.latency_frames, data_root, work, log)
    rows = {name: {**row, **timing[name]} for name, row in rows.items()}
    print_table(rows, budget.latency_frames)
    if args.quick:
        print("\n--quick trains each model for a few iterations: the table shows that every path runs, "
              "not what distillation achieves (see docs/results.md for that).")
    elif args.teacher_ckpt is None:
        print(f"\nThe teacher trained {budget.teacher_iters} iterations here, too few to teach: the distilled "
              "student starts from its head and is no better than it. docs/results.md measures the gain with "
              "a 2500-iteration teacher over 3 seeds; give such a teacher with --teacher-ckpt.")
    else:
        print("\nOne run per model: docs/results.md measures the same comparison over 3 seeds.")
    (work / "results.json").write_text(json.dumps(rows, indent=2))
    print(f"\nTotal {time.perf_counter() - start:.0f} s; results in {work / 'results.json'}")


if __name__ == "__main__":
    main()
