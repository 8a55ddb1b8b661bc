#!/usr/bin/env bash
# Usage: tools/dist_test.sh CONFIG CHECKPOINT NPROC [test.py args, e.g. --eval bbox]
set -euo pipefail
CONFIG=$1
CHECKPOINT=$2
NPROC=$3
shift 3
PORT=${PORT:-29501} exec "$(dirname "$0")/dist_launch.sh" "$NPROC" tools/test.py "$CONFIG" "$CHECKPOINT" "$@"
