#!/usr/bin/env bash
# Usage: tools/dist_test.sh CONFIG CHECKPOINT NPROC [test.py args, e.g. --eval bbox]
# The rendezvous port defaults to 29501 (PORT overrides it), next to a training run's 29500.
set -euo pipefail
source "$(dirname "$0")/launch_args.bash"
require_args 3 "CONFIG CHECKPOINT NPROC [test.py args, e.g. --eval bbox]" \
    "tools/dist_test.sh projects/configs/RayDN/raydn_r18_704_bs2_seq_428q_nui_24e.py work_dirs/student.pth 4 --eval bbox" "$@"
PORT=${PORT:-29501} exec "$(dirname "$0")/dist_launch.sh" "$3" tools/test.py "$1" "$2" "${@:4}"
