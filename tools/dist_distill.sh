#!/usr/bin/env bash
# Usage: tools/dist_distill.sh CONFIG NPROC [distillation.py args...]
# One process per GPU (NCCL); on a machine without GPUs, NPROC CPU processes (gloo).
set -euo pipefail
CONFIG=$1
NPROC=$2
shift 2
PORT=${PORT:-29500}
cd "$(dirname "$0")/.."
exec torchrun --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="$PORT" \
    --nproc_per_node="$NPROC" tools/distillation.py "$CONFIG" "$@"
