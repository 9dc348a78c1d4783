#!/usr/bin/env bash
# Peak RSS (and time) of a backfill, then a reconcile, of an export of wide
# lines: 3,000 valid QuestionAsked events of ~100 KB each, over 30
# presentations. By default the bulk is the question's text (EVENTS.md: a
# text over 4,000 characters is cut to them, the event stays valid; a
# parser that does not cut yet leaves the warehouse to refuse it); with
# FIELD=details it is a field of `data` the contract does not know (read
# whole, then ignored), so the events load on any parser. One binary, or
# two alternated run by run:
#   scripts/bench-wide-lines.sh target/release/warehouse
#   ROUNDS="1 2" scripts/bench-wide-lines.sh OLD_BINARY NEW_BINARY
#   LINES=3000 TEXT_BYTES=100000 FIELD=text ...   # the export's shape
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ $# -ge 1 ] || { echo "usage: $0 BINARY [OTHER_BINARY]" >&2; exit 2; }
. scripts/setup.sh >/dev/null
work=${BENCH_DIR:-/tmp/warehouse-bench}
mkdir -p "$work"
lines=${LINES:-3000}
text_bytes=${TEXT_BYTES:-100000}
field=${FIELD:-text}
export_file="$work/wide-$lines-$text_bytes-$field.jsonl"
if [ ! -f "$export_file" ]; then
  python3 - "$export_file" "$lines" "$text_bytes" "$field" <<'PY'
import json, sys
path, lines, text_bytes, field = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
words = "what will the next quarter bring for the team and its plans".split()
with open(path, "w") as out:
    for i in range(lines):
        text, n = [], 0
        while n < text_bytes:
            word = words[(i * 7 + n) % len(words)]
            text.append(word)
            n += len(word) + 1
        event = {
            "_id": {"$oid": f"{i:024x}"},
            "streamId": f"prs-wide-{i % 30:04d}",
            "version": i // 30 + 1,
            "type": "QuestionAsked",
            "occurredAt": {"$date": f"2021-09-14T14:{(i // 60) % 60:02d}:{i % 60:02d}.000Z"},
            "tenantId": "acme",
            "data": {"questionId": f"q-{i}", "viewerId": f"u-{i % 500}",
                     "text": f"question {i}", "anonymous": False},
        }
        event["data"][field] = " ".join(text)
        out.write(json.dumps(event) + "\n")
PY
fi
echo "export: $export_file, $(wc -l < "$export_file") lines, $(( $(stat -c %s "$export_file") / 1048576 )) MiB"
. scripts/bench-lib.sh
raise_buffer_pool 4096
bins=("$@")
for round in ${ROUNDS:-1}; do
  for index in "${!bins[@]}"; do
    bin=${bins[$index]}
    db="bench_wide_$index"
    export DATABASE_URL="mysql://root@127.0.0.1:3306/$db"
    mysql -uroot -e "DROP DATABASE IF EXISTS $db"
    empty_buffer_pool
    "$bin" migrate --create-database >/dev/null
    /usr/bin/time -f '%e %M' -o "$work/time" "$bin" backfill --source "$export_file" --run-id "wide-$round" > "$work/out.json" 2>/dev/null
    read -r seconds rss < "$work/time"
    python3 -c "import json, sys; d = json.load(open('$work/out.json')); print(f'round $round {sys.argv[1]} backfill: {sys.argv[2]} s wall, {d[\"events\"]} events, {d[\"malformed\"]} malformed, {d[\"refused\"]} refused, the run\'s own {d[\"eventsPerSecond\"]:.0f} events/s, peak RSS {int(sys.argv[3]) // 1024} MiB')" "$bin" "$seconds" "$rss"
    /usr/bin/time -f '%e %M' -o "$work/time" "$bin" reconcile --source "$export_file" --from 2000-01-01T00:00:00Z --to 2100-01-01T00:00:00Z > "$work/out.json" 2>/dev/null
    read -r seconds rss < "$work/time"
    python3 -c "import json, sys; d = json.load(open('$work/out.json')); print(f'round $round {sys.argv[1]} reconcile: {sys.argv[2]} s wall, compared {d[\"compared\"]}, missing {d[\"missing\"]}, peak RSS {int(sys.argv[3]) // 1024} MiB')" "$bin" "$seconds" "$rss"
    mysql -uroot -e "DROP DATABASE IF EXISTS $db"
  done
done
