#!/usr/bin/env bash
# Backfill (direct) and reconcile throughput and peak RSS on generated
# exports of growing size, against the local MariaDB, with the release build.
#   scripts/bench-backfill-reconcile.sh            # 100k, 1M and 5M events
#   SIZES="100000" scripts/bench-backfill-reconcile.sh
#   BENCH_DB=mybench BENCH_DIR=/tmp/mine ...  # not to share databases/files with another run
#   BUFFER_POOL_MIB=0 ...                      # leave MariaDB's buffer pool as it is (default: raise it to 4 GiB)
#   LANES=1 ...                                # the backfill's --lanes (default 2)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/setup.sh >/dev/null
cargo build --quiet --release --bin warehouse
bin=target/release/warehouse
work=${BENCH_DIR:-/tmp/warehouse-bench}
mkdir -p "$work"
BUFFER_POOL_MIB=${BUFFER_POOL_MIB:-4096}
. scripts/bench-lib.sh
if [ "$BUFFER_POOL_MIB" -gt 0 ]; then raise_buffer_pool "$BUFFER_POOL_MIB"; fi
echo "innodb_buffer_pool_size: $(( $(mysql -uroot -N -e "SELECT @@innodb_buffer_pool_size") / 1048576 )) MiB"
SIZES=${SIZES:-"100000 1000000 5000000"}
printf '%-9s %-26s %12s %12s %12s\n' events step seconds events/s peak_RSS_MiB
for size in $SIZES; do
  # 500 viewers x (18 heartbeats + join + leave + extras) ~ 10,100 events per presentation.
  presentations=$(( (size + 10099) / 10100 ))
  export="$work/export-$size.jsonl"
  [ -f "$export" ] || "$bin" generate --presentations "$presentations" --viewers 500 --heartbeats 18 --seed 42 --out "$export" 2>/dev/null
  lines=$(wc -l < "$export")
  db="${BENCH_DB:-bench}_$size"
  export DATABASE_URL="mysql://root@127.0.0.1:3306/$db"
  mysql -uroot -e "DROP DATABASE IF EXISTS $db"
  if [ "$BUFFER_POOL_MIB" -gt 0 ]; then empty_buffer_pool; fi
  "$bin" migrate --create-database >/dev/null
  measure() { # step, command...
    local step=$1; shift
    /usr/bin/time -f '%e %M' -o "$work/time" "$@" > "$work/out.json"
    read -r seconds rss_kib < "$work/time"
    python3 -c "import sys; l, s, r = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]); print(f'{l:<9} {sys.argv[4]:<26} {s:>12.2f} {l / max(s, 0.01):>12.0f} {r / 1024:>12.1f}')" \
      "$lines" "$seconds" "$rss_kib" "$step"
  }
  measure "backfill direct" "$bin" backfill --source "$export" --run-id "bench-$size" --lanes "${LANES:-2}"
  # The run's own figure: distinct events loaded per second of loading.
  python3 -c "import json; s = json.load(open('$work/out.json')); print(f\"          ({s['events']} events loaded in {s['elapsedSeconds']:.2f} s: {s['eventsPerSecond']:.0f} events/s)\")"
  measure "reconcile (no diff)" "$bin" reconcile --source "$export"
  # With the window given (as the nightly run has it), the ledger's side runs
  # beside the export pass instead of after it.
  measure "reconcile (no diff, window)" "$bin" reconcile --source "$export" --from 2000-01-01T00:00:00Z --to 2100-01-01T00:00:00Z
  # 0.1% of the events go missing from the warehouse.
  mysql -uroot "$db" -e "DELETE FROM event_ledger WHERE data_point <> 'none' AND RAND(7) < 0.001"
  measure "reconcile (0.1% missing)" "$bin" reconcile --source "$export"
  missing=$(python3 -c "import json;print(json.load(open('$work/out.json'))['missing'])")
  echo "          (found $missing missing)"
  mysql -uroot -e "DROP DATABASE IF EXISTS $db"
done
