"""The report of ``tools/gpu_check.sh``: its results folder as one JSON and a markdown summary.

    python tools/gpu_check_summary.py WORK_DIR --out RESULTS_DIR [--elapsed-s S]

Reads, in the scratch folder WORK_DIR, ``steps.tsv`` (each step's status and seconds) and the JSON each step wrote
(``latency_<precision>.json`` from tools/benchmark_compare.py, ``graphs_*.json`` and
``compile_*.json`` from tools/benchmark.py, ``train.json``, ``distill.json``), and writes
``gpu_check.json`` (all of them, by step) and ``summary.md``: latency and FPS per model and
precision with the R18 / R50 ratio against the targets of issue #14, the stage breakdown and
fp32 drift (``--parity``) of the CUDA-graph and compiled runs, training throughput and the
distillation overhead. A step that did not write its JSON shows as missing with its status.
``logs.txt`` holds the end of every step's log. These three files are all that RESULTS_DIR
gets (the device tool brings back only a few files).
"""
from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path
from typing import Any, Optional, Sequence

#: Issue #14's targets: FPS of RayDN R18 and R50 (batch 1, 704x256) and the R18 / R50 latency ratio.
TARGET_FPS = {"raydn_r18": 150.0, "raydn_r50": 100.0}
TARGET_RATIO = 0.6
#: Characters kept from the end of each step's log in ``logs.txt``.
LOG_TAIL_CHARS = 3000


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Command-line arguments (see ``--help``)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("work", type=Path, help="the scratch folder tools/gpu_check.sh wrote")
    parser.add_argument("--out", type=Path, required=True, help="where summary.md, gpu_check.json, logs.txt go")
    parser.add_argument("--elapsed-s", type=int, default=None, help="wall seconds of the whole check")
    args = parser.parse_args(argv)
    if not (args.work / "steps.tsv").is_file():
        parser.error(f"{args.work} has no steps.tsv; is it the scratch folder of tools/gpu_check.sh?")
    return args


def read_results(folder: Path) -> dict[str, Any]:
    """``steps`` (name -> status, seconds) and ``results`` (step name -> its JSON)."""
    with (folder / "steps.tsv").open() as handle:
        steps = {row["step"]: dict(status=row["status"], seconds=int(row["seconds"]))
                 for row in csv.DictReader(handle, delimiter="\t")}
    results = {path.stem: json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))}
    return dict(steps=steps, results=results)


def log_tails(folder: Path) -> str:
    """The last :data:`LOG_TAIL_CHARS` characters of every ``*.log`` in ``folder``, each under its name."""
    return "".join(f"===== {path.name}\n{path.read_text(errors='replace')[-LOG_TAIL_CHARS:]}\n"
                   for path in sorted(folder.glob("*.log")))


def _verdict(ok: bool) -> str:
    return "meets" if ok else "misses"


def latency_lines(results: dict[str, Any]) -> list[str]:
    """The latency table of the ``latency_<precision>`` results and the target checks."""
    lines = ["| precision | model | p50 ms | mean ms | FPS | p50 / first model |", "|---|---|---|---|---|---|"]
    checks = []
    for name, result in results.items():
        if not name.startswith("latency_"):
            continue
        models = result["models"]
        for model, stats in models.items():
            lat = stats["latency"]
            lines.append(f"| {result['precision']} | {model} | {lat['p50_ms']:.2f} | {lat['mean_ms']:.2f} | "
                         f"{stats['fps']:.1f} | {stats['p50_ratio']:.3f} |")
            if model in TARGET_FPS:
                checks.append(f"- {result['precision']} {model}: {stats['fps']:.1f} FPS, "
                              f"{_verdict(stats['fps'] >= TARGET_FPS[model])} the target {TARGET_FPS[model]:.0f}")
        if "raydn_r18" in models and "raydn_r50" in models:
            ratio = models["raydn_r18"]["latency"]["p50_ms"] / models["raydn_r50"]["latency"]["p50_ms"]
            checks.append(f"- {result['precision']} R18 / R50 p50 latency: {ratio:.3f}, "
                          f"{_verdict(ratio <= TARGET_RATIO)} the target {TARGET_RATIO}")
    return lines + [""] + checks


def accelerated_lines(results: dict[str, Any]) -> list[str]:
    """Stages, FPS and parity of the ``graphs_*`` and ``compile_*`` runs of tools/benchmark.py."""
    lines = ["| run | precision | parts | backbone ms | neck ms | head ms | total ms | FPS | "
             "1st-frame centre / score max diff | worst label agreement |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, result in results.items():
        if not name.startswith(("graphs_", "compile_")):
            continue
        lat = result["latency"]
        parts = "; ".join(f"{part}: {how}" for part, how in result["acceleration"].items())
        parity = result.get("parity")
        drift = "n/a" if parity is None else (f"{parity['first_frame']['centre_max_m']:.4f} m / "
                                             f"{parity['first_frame']['score_max']:.5f}")
        agreement = "n/a" if parity is None else f"{parity['worst']['label_agreement']:.3f}"
        lines.append(f"| {name} | {result['precision']} | {parts} | {lat['backbone']['mean_ms']:.2f} | "
                     f"{lat['neck']['mean_ms']:.2f} | {lat['head']['mean_ms']:.2f} | {lat['total']['mean_ms']:.2f} | "
                     f"{result['fps']:.1f} | {drift} | {agreement} |")
    return lines


def training_lines(results: dict[str, Any]) -> list[str]:
    """Training throughput (``train``) and distillation overhead (``distill``)."""
    lines = []
    if "train" in results:
        train = results["train"]
        lines.append(f"- training {train['config']}: {train['samples_per_s']:.2f} samples/s, step mean "
                     f"{train['step']['mean_ms']:.1f} ms (batch {train['batch_size']}, precision "
                     f"{train['precision']}, peak {train['peak_memory_mib']:.0f} MiB)")
    if "distill" in results:
        distill = results["distill"]
        lines.append(f"- distillation step {distill['config']}: x{distill['time_ratio']:.2f} time and "
                     f"x{distill['memory_ratio']:.2f} peak memory of teacher inference + student step")
    return lines or ["- no training result"]


def summary_markdown(report: dict[str, Any], elapsed_s: Optional[int]) -> str:
    """The whole ``summary.md``."""
    results = report["results"]
    env = next((r["environment"] for r in results.values() if "environment" in r), {})
    lines = ["# GPU check", "",
             f"device: {env.get('device_name', env.get('device', 'unknown'))}, torch {env.get('torch', '?')}; "
             f"whole check {elapsed_s if elapsed_s is not None else '?'} s", "",
             "## Steps", "", "| step | status | seconds |", "|---|---|---|"]
    lines += [f"| {name} | {step['status']} | {step['seconds']} |" for name, step in report["steps"].items()]
    missing = [name for name, step in report["steps"].items() if step["status"] == "ok" and name != "world"
               and name not in results]
    if missing:
        lines.append(f"\nsteps that finished without writing their JSON: {missing}")
    lines += ["", "## Inference latency (batch 1, synthetic frames, models interleaved)", ""]
    lines += latency_lines(results)
    lines += ["", "## CUDA graphs and torch.compile (stages; drift from fp32 eager)", ""]
    lines += accelerated_lines(results)
    lines += ["", "## Training", ""] + training_lines(results)
    return "\n".join(lines) + "\n"


def main(argv: Optional[Sequence[str]] = None) -> dict[str, Any]:
    """Write ``gpu_check.json``, ``summary.md`` and ``logs.txt`` into ``--out``; returns the report."""
    args = parse_args(argv)
    report = read_results(args.work)
    report["elapsed_s"] = args.elapsed_s
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_check.json").write_text(json.dumps(report, indent=2))
    summary = summary_markdown(report, args.elapsed_s)
    (args.out / "summary.md").write_text(summary)
    (args.out / "logs.txt").write_text(log_tails(args.work))
    print(summary)
    return report


if __name__ == "__main__":
    main()
