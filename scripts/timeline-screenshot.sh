#!/usr/bin/env bash
# Renders a sample presentation's audience curve to a PNG, for a person to
# check the SVG chart by eye:
#   scripts/timeline-screenshot.sh PRESENTATION [TENANT]
# loads ../shared/samples/events.jsonl into a fresh database (a direct
# backfill: the loaders' own code, no queues), writes
# `warehouse timeline --format svg` to target/timeline-screenshots/P.svg and
# screenshots it with headless Chromium (Debian's package, installed with
# apt-get when absent and run as root) to P.png next to it.
# TENANT is looked up when the id belongs to one tenant only.
# SCREENSHOT_DATABASE_URL names the database (recreated on every run).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ $# -ge 1 ] || { echo "usage: $0 PRESENTATION [TENANT]" >&2; exit 2; }
presentation="$1"
tenant="${2:-}"
. scripts/setup.sh

say() { printf 'timeline-screenshot: %s\n' "$*" >&2; }
die() { printf 'timeline-screenshot: ERROR: %s\n' "$*" >&2; exit 1; }

sample="$(cd .. && pwd)/shared/samples/events.jsonl"
[ -f "$sample" ] || die "the sample export $sample is missing"

browser="$(command -v chromium || command -v chromium-browser || true)"
if [ -z "$browser" ]; then
  [ "$(id -u)" = 0 ] || die "Chromium is not installed. Install it with: sudo apt-get install -y chromium"
  say "installing chromium with apt-get"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
    || die "apt-get could not install chromium"
  browser="$(command -v chromium)"
fi

export DATABASE_URL="${SCREENSHOT_DATABASE_URL:-mysql://root@127.0.0.1:3306/warehouse_screenshot}"
database="${DATABASE_URL##*/}"
database="${database%%\?*}"
# Only what the picture needs: the warehouse command.
cargo build --quiet -p warehouse-cli --bin warehouse
warehouse=target/debug/warehouse

say "loading the sample into a fresh database $database"
mysql -h 127.0.0.1 -P 3306 -uroot -e "DROP DATABASE IF EXISTS \`$database\`"
"$warehouse" migrate --create-database >/dev/null
"$warehouse" backfill --mode direct --source "$sample" >/dev/null

if [ -z "$tenant" ]; then
  tenants="$(mysql -h 127.0.0.1 -P 3306 -uroot -N -B "$database" \
    -e "SELECT DISTINCT tenant_id FROM dim_presentation WHERE presentation_id = '${presentation//\'/\'\'}'")"
  case "$(printf '%s' "$tenants" | grep -c .)" in
    0) die "the sample has no presentation $presentation (see ../shared/samples/README.md)" ;;
    1) tenant="$tenants" ;;
    *) die "$presentation belongs to several tenants ($(echo $tenants)): name one as the second argument" ;;
  esac
fi

out="$PWD/target/timeline-screenshots"
mkdir -p "$out"
name="$(printf '%s-%s' "$tenant" "$presentation" | tr -c 'A-Za-z0-9._-' '_')"
svg="$out/$name.svg"
png="$out/$name.png"
"$warehouse" timeline --tenant "$tenant" --presentation "$presentation" --format svg >"$svg"

# The chart is 1200 x 600 (shared::read::TIMELINE_SVG_SIZE): the window
# shows it whole. Chromium refuses to run as root without --no-sandbox.
rm -f "$png"
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars \
  --window-size=1200,600 --screenshot="$png" "file://$svg" >/dev/null 2>&1 \
  || die "chromium could not take the screenshot (run it by hand: $browser --headless --no-sandbox --screenshot=$png file://$svg)"
[ -s "$png" ] || die "chromium wrote no $png"
say "SVG: $svg"
echo "$png"
