#!/usr/bin/env bash
# Usage: tools/dist_launch.sh NPROC SCRIPT [script args...]
# The torchrun line shared by dist_train.sh, dist_test.sh and dist_distill.sh: NPROC processes
# on this node (one per GPU with NCCL; CPU processes with gloo on a machine without GPUs).
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR; PORT (default 29500) for the rendezvous.
set -euo pipefail
source "$(dirname "$0")/launch_args.bash"
require_args 2 "NPROC SCRIPT [script args...]" "tools/dist_launch.sh 4 tools/train.py CONFIG" "$@"
NPROC=$1
SCRIPT=$2
shift 2
cd "$(dirname "$0")/.."
exec torchrun --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="${PORT:-29500}" \
    --nproc_per_node="$NPROC" "$SCRIPT" "$@"
