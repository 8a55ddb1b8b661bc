#!/usr/bin/env bash
# Usage: tools/dist_train.sh CONFIG NPROC [train.py args...]
# One process per GPU (NCCL); on a machine without GPUs, NPROC CPU processes (gloo).
set -euo pipefail
if [ "$#" -lt 2 ]; then
    echo "usage: $0 CONFIG NPROC [train.py args...]" >&2
    echo "  e.g. tools/dist_train.sh projects/configs/RayDN/raydn_r18_704_bs2_seq_428q_nui_24e.py 4" >&2
    exit 2
fi
CONFIG=$1
NPROC=$2
shift 2
exec "$(dirname "$0")/dist_launch.sh" "$NPROC" tools/train.py "$CONFIG" "$@"
