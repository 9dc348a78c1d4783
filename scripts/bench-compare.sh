#!/usr/bin/env bash
# Two `warehouse` release binaries alternated, run by run, on one generated
# export: a direct backfill (default lanes), then a reconcile with a window.
# The machine's speed swings within minutes, so compare pairs, not runs.
#   scripts/bench-compare.sh OLD_BINARY NEW_BINARY
#   SIZE=1000000 ROUNDS="1 2" ORDER="old new" scripts/bench-compare.sh ...
# Build an old binary with e.g.
#   git worktree add /tmp/old REV && (cd /tmp/old && CARGO_TARGET_DIR=/tmp/old-target cargo build --release --bin warehouse)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ $# -eq 2 ] || { echo "usage: $0 OLD_BINARY NEW_BINARY" >&2; exit 2; }
declare -A bins=([old]=$1 [new]=$2)
. scripts/setup.sh >/dev/null
work=${BENCH_DIR:-/tmp/warehouse-bench}
mkdir -p "$work"
size=${SIZE:-1000000}
export_file="$work/export-$size.jsonl"
# The same export as scripts/bench-backfill-reconcile.sh makes for this size.
[ -f "$export_file" ] || "$2" generate --presentations $(( (size + 10099) / 10100 )) --viewers 500 --heartbeats 18 --seed 42 --out "$export_file" 2>/dev/null
lines=$(wc -l < "$export_file")
. scripts/bench-lib.sh
raise_buffer_pool 4096
for round in ${ROUNDS:-1 2}; do
  for which in ${ORDER:-old new}; do
    bin=${bins[$which]}
    db="bench_compare_$which"
    export DATABASE_URL="mysql://root@127.0.0.1:3306/$db"
    mysql -uroot -e "DROP DATABASE IF EXISTS $db"
    empty_buffer_pool
    "$bin" migrate --create-database >/dev/null
    /usr/bin/time -f '%e %M' -o "$work/time" "$bin" backfill --source "$export_file" --run-id "compare-$round" > "$work/out.json" 2>/dev/null
    read -r seconds rss < "$work/time"
    eps=$(python3 -c "import json; print(round(json.load(open('$work/out.json'))['eventsPerSecond']))")
    echo "round $round $which backfill: ${seconds} s wall, the run's own ${eps} events/s, peak RSS $((rss / 1024)) MiB"
    /usr/bin/time -f '%e %M' -o "$work/time" "$bin" reconcile --source "$export_file" --from 2000-01-01T00:00:00Z --to 2100-01-01T00:00:00Z > "$work/out.json" 2>/dev/null
    read -r seconds rss < "$work/time"
    python3 -c "import json, sys; d = json.load(open('$work/out.json')); s = float(sys.argv[1]); print(f'round $round $which reconcile (window): {s} s wall, {$lines / s / 1e6:.2f} M lines/s, missing {d[\"missing\"]}, conflicting {d[\"conflicting\"]}, peak RSS {int(sys.argv[2]) // 1024} MiB')" "$seconds" "$rss"
    mysql -uroot -e "DROP DATABASE IF EXISTS $db"
  done
done
