#!/usr/bin/env bash
# The main job on a fresh machine: set up what is missing, then run the whole
# pipeline locally on the sample export (or the export given as $1).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/setup.sh
# A database of its own, recreated on every run.
export DATABASE_URL="${PIPELINE_DATABASE_URL:-mysql://root@127.0.0.1:3306/warehouse_pipeline}"
cargo build --quiet --bin warehouse
args=()
if [ $# -gt 0 ]; then args+=(--source "$1"); fi
exec target/debug/warehouse pipeline --fresh "${args[@]}"
