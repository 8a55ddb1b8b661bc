#!/usr/bin/env bash
# Usage: tools/dist_distill.sh CONFIG NPROC [distillation.py args...]
# One process per GPU (NCCL); on a machine without GPUs, NPROC CPU processes (gloo).
set -euo pipefail
CONFIG=$1
NPROC=$2
shift 2
exec "$(dirname "$0")/dist_launch.sh" "$NPROC" tools/distillation.py "$CONFIG" "$@"
