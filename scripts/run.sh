#!/usr/bin/env bash
# The main job on a fresh machine: set up what is missing, then run the whole
# pipeline locally on the real function binaries, on the sample export (or
# the export given as $1): moto queues, the functions under cargo lambda
# watch's control plane, the backfill enqueueing, the loaders draining, the
# reconcile function, a report from the analytics API function.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/setup.sh
# A database of its own, recreated on every run.
export DATABASE_URL="${PIPELINE_DATABASE_URL:-mysql://root@127.0.0.1:3306/warehouse_pipeline}"
# The warehouse command and every function binary, side by side.
cargo build --quiet --workspace --bins
args=()
if [ $# -gt 0 ]; then args+=(--source "$1"); fi
exec target/debug/warehouse pipeline --fresh "${args[@]}"
