#!/usr/bin/env bash
# The one-shot GPU check: every GPU number of docs/benchmarks.md in one run of under 8 minutes.
#
#   bash tools/gpu_check.sh [--cpu-smoke] [RESULTS_DIR]
#
# RESULTS_DIR defaults to $OUT (the device tool's output folder) or work_dirs/gpu_check.
# On the GPU machine (torch + CUDA, no mmengine / nuscenes-devkit) it first installs the
# carried wheels (.whl/, from shared/device/fetch_wheels.sh) as that script says. Then:
#   background  a synthetic world at nuScenes image size (1600x900, which the 704x256
#               pipelines expect) and its info files, for the training steps;
#   latency     tools/benchmark_compare.py of RayDN R18/R34/R50 and StreamPETR R50 (704x256,
#               synthetic frames, interleaved) in fp32, tf32 and bf16: FPS and the R18/R50 ratio;
#   graphs      tools/benchmark.py --cuda-graphs --parity (stages, drift from fp32) of R18 and
#               R50 in fp32 and bf16;
#   train       tools/benchmark_train.py on RayDN R50 (704x256) on the synthetic world;
#   distill     tools/benchmark_distill.py on Distill3D RayDN R50 -> R18 (random teacher);
#   head graph  tools/benchmark.py --cuda-graphs --cuda-graph-head --parity of R18 and R50 (fp32);
#   compile     tools/benchmark.py --compile --parity of R18 and R50 (default mode), then
#               R18 in reduce-overhead mode, as long as time is left.
# Each step runs under `timeout`, cut to what is left of the budget (BUDGET_S, 450 s by
# default) and skipped when too little is left; its JSON, log and status (steps.tsv) land in a
# scratch folder, from which tools/gpu_check_summary.py writes the three files of RESULTS_DIR:
# summary.md, gpu_check.json (every step's result) and logs.txt (the end of every log); the
# device tool brings back only a few files from $OUT.
# --cpu-smoke runs every step on CPU with the tiny test RayDN (in every model slot), a tiny world, one or two
# frames, the aot_eager compile backend, one compile run, no tf32 / CUDA graphs (skipped, CUDA
# only) and a 900 s budget: the end-to-end check of this script (tests/tools/test_gpu_check.py).
set -uo pipefail

SMOKE=0
if [[ "${1:-}" == "--cpu-smoke" ]]; then SMOKE=1; shift; fi
if [[ "${1:-}" == -* ]]; then echo "usage: bash tools/gpu_check.sh [--cpu-smoke] [RESULTS_DIR]" >&2; exit 2; fi
RESULTS="${1:-${OUT:-work_dirs/gpu_check}}"
mkdir -p "$RESULTS"
RESULTS="$(cd "$RESULTS" && pwd)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
cd "$(dirname "$0")/.."
START=$SECONDS
PY="${PYTHON:-python3}"

if [[ -d .whl ]] && ls .whl/*.whl > /dev/null 2>&1; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH="/tmp/site:$PWD"
fi
export PYTHONPATH="${PYTHONPATH:-$PWD}"
[[ ":$PYTHONPATH:" == *":$PWD:"* ]] || export PYTHONPATH="$PYTHONPATH:$PWD"

if (( SMOKE )); then
  DEVICE=cpu; PRECISIONS=(fp32 bf16); FRAMES=1; WARMUP=0; STEPS=1; GRAPHS=0; BACKEND=aot_eager
  COMPILE_RUNS=("r18 default"); BUDGET_S="${BUDGET_S:-900}"
  R18=tests/engine/configs/tiny_raydn.py; R34=$R18; R50=$R18; SPETR=$R18
  TRAIN=$R18; DISTILL=tests/kd/configs/tiny_distill_raydn.py
  WORLD="$WORK/world"; WORLD_ARGS=(--train-scenes 2 --val-scenes 1 --samples-per-scene 4 --image-size 400 225)
else
  DEVICE=cuda; PRECISIONS=(fp32 tf32 bf16); FRAMES=50; WARMUP=10; STEPS=10; GRAPHS=1; BACKEND=inductor
  COMPILE_RUNS=("r18 default" "r50 default" "r18 reduce-overhead"); BUDGET_S="${BUDGET_S:-450}"
  R18=projects/configs/RayDN/raydn_r18_704_bs2_seq_428q_nui_24e.py
  R34=projects/configs/RayDN/raydn_r34_704_bs2_seq_428q_nui_24e.py
  R50=projects/configs/RayDN/raydn_r50_704_bs2_seq_428q_nui_60e.py
  SPETR=projects/configs/StreamPETR/stream_petr_r50_flash_704_bs2_seq_428q_nui_60e.py
  TRAIN=$R50; DISTILL=projects/configs/Distill3D/distill_raydn_r50_r18.py
  WORLD="$WORK/world"; WORLD_ARGS=(--train-scenes 2 --val-scenes 1 --samples-per-scene 20 --image-size 1600 900)
fi
# Latency runs on synthetic frames: the info file of data.test must not be found.
NO_TEST_DATA=(data.test.ann_file="$WORK/no_test_data.pkl")
TRAIN_DATA=(data.train.data_root="$WORLD/" data.train.ann_file="$WORLD/nuscenes2d_temporal_infos_train.pkl"
            data.train.version=v1.0-mini)
printf 'step\tstatus\tseconds\n' > "$WORK/steps.tsv"

# step NAME MIN_S MAX_S CMD...: run CMD under a timeout of MAX_S, cut to the budget left;
# skipped when less than MIN_S is left. Output in NAME.log, status in steps.tsv.
step() {
  local name=$1 min_s=$2 max_s=$3; shift 3
  local left=$(( BUDGET_S - (SECONDS - START) )) begin=$SECONDS status rc
  if (( left < min_s )); then
    printf '%s\tskipped (%ss of budget left, needs %ss)\t0\n' "$name" "$left" "$min_s" >> "$WORK/steps.tsv"
    return
  fi
  echo "== $name (timeout $(( left < max_s ? left : max_s ))s): $*"
  timeout --kill-after=10 "$(( left < max_s ? left : max_s ))" "$@" > "$WORK/$name.log" 2>&1
  rc=$?
  case $rc in 0) status=ok ;; 124|137) status=timeout ;; *) status="failed (rc $rc)" ;; esac
  printf '%s\t%s\t%s\n' "$name" "$status" "$(( SECONDS - begin ))" >> "$WORK/steps.tsv"
  tail -n 3 "$WORK/$name.log"
}
skip() { printf '%s\tskipped (%s)\t0\n' "$1" "$2" >> "$WORK/steps.tsv"; }

( timeout "$BUDGET_S" "$PY" tools/create_synthetic_nuscenes.py --out "$WORLD" "${WORLD_ARGS[@]}" &&
  timeout "$BUDGET_S" "$PY" tools/create_data_nusc.py --root-path "$WORLD" --out-dir "$WORLD" \
    --extra-tag nuscenes2d --version v1.0-mini ) > "$WORK/world.log" 2>&1 &
WORLD_PID=$!

for precision in "${PRECISIONS[@]}"; do
  step "latency_$precision" 20 150 "$PY" tools/benchmark_compare.py --device $DEVICE --precision "$precision" \
    --frames $FRAMES --warmup $WARMUP --model raydn_r18 $R18 --model raydn_r34 $R34 --model raydn_r50 $R50 \
    --model streampetr_r50 $SPETR --out "$WORK/latency_$precision.json" --cfg-options "${NO_TEST_DATA[@]}"
done
(( SMOKE )) && skip latency_tf32 "CUDA only"
for model in r18 r50; do
  config=$([[ $model == r18 ]] && echo $R18 || echo $R50)
  for precision in fp32 bf16; do
    if (( GRAPHS )); then
      step "graphs_${model}_$precision" 20 90 "$PY" tools/benchmark.py $config --device $DEVICE --cuda-graphs \
        --precision $precision --parity --iters $FRAMES --warmup $WARMUP \
        --out "$WORK/graphs_${model}_$precision.json" --cfg-options "${NO_TEST_DATA[@]}"
    else
      skip "graphs_${model}_$precision" "CUDA only"
    fi
  done
done

wait "$WORLD_PID"
WORLD_RC=$?
printf 'world\t%s\t%s\n' "$([[ $WORLD_RC == 0 ]] && echo ok || echo "failed (rc $WORLD_RC)")" \
  "$(( SECONDS - START ))" >> "$WORK/steps.tsv"
step train 30 120 "$PY" tools/benchmark_train.py $TRAIN --device $DEVICE --steps $STEPS --warmup $(( WARMUP > 0 ? 3 : 0 )) \
  --out "$WORK/train.json" --cfg-options "${TRAIN_DATA[@]}"
step distill 30 120 "$PY" tools/benchmark_distill.py $DISTILL --device $DEVICE --random-teacher \
  --iters $(( STEPS / 2 > 0 ? STEPS / 2 : 1 )) --warmup $(( WARMUP > 0 ? 1 : 0 )) --out "$WORK/distill.json" --cfg-options "${TRAIN_DATA[@]}"

for model in r18 r50; do
  config=$([[ $model == r18 ]] && echo $R18 || echo $R50)
  if (( GRAPHS )); then
    step "graphs_head_${model}_fp32" 20 90 "$PY" tools/benchmark.py $config --device $DEVICE --cuda-graphs \
      --cuda-graph-head --parity --iters $FRAMES --warmup $WARMUP --out "$WORK/graphs_head_${model}_fp32.json" \
      --cfg-options "${NO_TEST_DATA[@]}"
  else
    skip "graphs_head_${model}_fp32" "CUDA only"
  fi
done
for run in "${COMPILE_RUNS[@]}"; do
  read -r model mode <<< "$run"
  config=$([[ $model == r18 ]] && echo $R18 || echo $R50)
  step "compile_${model}_$mode" 60 200 "$PY" tools/benchmark.py $config --device $DEVICE --compile \
    --compile-mode $mode --compile-backend $BACKEND --parity --iters $FRAMES --warmup $WARMUP \
    --out "$WORK/compile_${model}_$mode.json" --cfg-options "${NO_TEST_DATA[@]}"
done

"$PY" tools/gpu_check_summary.py "$WORK" --out "$RESULTS" --elapsed-s $(( SECONDS - START ))
echo "results: $RESULTS"
