#!/usr/bin/env bash
# Usage: tools/dist_test.sh CONFIG CHECKPOINT NPROC [test.py args, e.g. --eval bbox]
set -euo pipefail
if [ "$#" -lt 3 ]; then
    echo "usage: $0 CONFIG CHECKPOINT NPROC [test.py args, e.g. --eval bbox]" >&2
    echo "  e.g. tools/dist_test.sh projects/configs/RayDN/raydn_r18_704_bs2_seq_428q_nui_24e.py work_dirs/student.pth 4 --eval bbox" >&2
    exit 2
fi
CONFIG=$1
CHECKPOINT=$2
NPROC=$3
shift 3
PORT=${PORT:-29501} exec "$(dirname "$0")/dist_launch.sh" "$NPROC" tools/test.py "$CONFIG" "$CHECKPOINT" "$@"
