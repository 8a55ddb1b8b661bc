#!/usr/bin/env bash
# Usage: tools/dist_distill.sh CONFIG NPROC [distillation.py args...]
# One process per GPU (NCCL); on a machine without GPUs, NPROC CPU processes (gloo).
set -euo pipefail
source "$(dirname "$0")/launch_args.bash"
require_args 2 "CONFIG NPROC [distillation.py args...]" \
    "tools/dist_distill.sh projects/configs/Distill3D/distill_raydn_r50_r18.py 4" "$@"
exec "$(dirname "$0")/dist_launch.sh" "$2" tools/distillation.py "$1" "${@:3}"
