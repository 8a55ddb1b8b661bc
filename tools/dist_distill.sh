#!/usr/bin/env bash
# Usage: tools/dist_distill.sh CONFIG NPROC [distillation.py args...]
# One process per GPU (NCCL); on a machine without GPUs, NPROC CPU processes (gloo).
set -euo pipefail
if [ "$#" -lt 2 ]; then
    echo "usage: $0 CONFIG NPROC [distillation.py args...]" >&2
    echo "  e.g. tools/dist_distill.sh projects/configs/Distill3D/distill_raydn_r50_r18.py 4" >&2
    exit 2
fi
CONFIG=$1
NPROC=$2
shift 2
exec "$(dirname "$0")/dist_launch.sh" "$NPROC" tools/distillation.py "$CONFIG" "$@"
