#!/usr/bin/env bash
# Usage: tools/dist_train.sh CONFIG NPROC [train.py args...]
# One process per GPU (NCCL); on a machine without GPUs, NPROC CPU processes (gloo).
set -euo pipefail
source "$(dirname "$0")/launch_args.bash"
require_args 2 "CONFIG NPROC [train.py args...]" \
    "tools/dist_train.sh projects/configs/RayDN/raydn_r18_704_bs2_seq_428q_nui_24e.py 4" "$@"
exec "$(dirname "$0")/dist_launch.sh" "$2" tools/train.py "$1" "${@:3}"
