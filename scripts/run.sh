#!/usr/bin/env bash
# The main job on a fresh machine: set up what is missing, then run the whole
# pipeline locally on the sample export (or the export given as $1).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/setup.sh
export DATABASE_URL="${DATABASE_URL:-mysql://root@127.0.0.1:3306/warehouse}"
cargo build --quiet --bin warehouse
args=()
if [ $# -gt 0 ]; then args+=(--source "$1"); fi
exec target/debug/warehouse pipeline "${args[@]}"
