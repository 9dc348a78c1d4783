#!/usr/bin/env bash
# Sets up what the project needs on this machine, idempotently:
#   - a MariaDB (or MySQL) server on 127.0.0.1:3306 (root, empty password),
#     installed with apt-get and started when absent;
#   - the project virtualenv .venv with the pinned moto[server] and cargo-lambda.
# Says exactly what is missing and how to get it when it cannot fix it itself.
# Source it (`. scripts/setup.sh`) to keep its exports.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MOTO_VERSION="5.2.5"
CARGO_LAMBDA_VERSION="1.9.2"
export TEST_DATABASE_URL="${TEST_DATABASE_URL:-mysql://root@127.0.0.1:3306/}"
export WAREHOUSE_VENV="$ROOT/.venv"

say() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: ERROR: %s\n' "$*" >&2; exit 1; }

mariadb_answers() {
  command -v mysqladmin >/dev/null 2>&1 && mysqladmin -h 127.0.0.1 -P 3306 -uroot --connect-timeout=2 ping >/dev/null 2>&1
}

ensure_mariadb() {
  if mariadb_answers; then return; fi
  if [ ! -x /usr/sbin/mariadbd ]; then
    [ "$(id -u)" = 0 ] || die "MariaDB is not installed. Install it with: sudo apt-get install -y mariadb-server"
    say "installing mariadb-server with apt-get"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mariadb-server >/dev/null
  fi
  say "starting MariaDB"
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  for _ in $(seq 1 60); do
    if mariadb_answers; then return; fi
    sleep 1
  done
  die "MariaDB did not answer on 127.0.0.1:3306 within 60s; see /var/log/mysql/error.log"
}

ensure_venv() {
  local marker="$WAREHOUSE_VENV/.installed-moto-$MOTO_VERSION-cargo-lambda-$CARGO_LAMBDA_VERSION"
  if [ -f "$marker" ]; then return; fi
  command -v python3 >/dev/null 2>&1 || die "python3 is missing. Install it with: sudo apt-get install -y python3 python3-venv"
  say "creating $WAREHOUSE_VENV with moto[server]==$MOTO_VERSION and cargo-lambda==$CARGO_LAMBDA_VERSION"
  python3 -m venv "$WAREHOUSE_VENV" || die "cannot create a virtualenv. Install venv support with: sudo apt-get install -y python3-venv"
  "$WAREHOUSE_VENV/bin/pip" install --quiet --disable-pip-version-check \
    "moto[server]==$MOTO_VERSION" "cargo-lambda==$CARGO_LAMBDA_VERSION" \
    || die "pip could not install moto[server]==$MOTO_VERSION and cargo-lambda==$CARGO_LAMBDA_VERSION from PyPI"
  touch "$marker"
}

command -v cargo >/dev/null 2>&1 || die "cargo is missing. Install Rust with rustup (https://rustup.rs)."
ensure_mariadb
ensure_venv
export PATH="$WAREHOUSE_VENV/bin:$PATH"
say "ready: MariaDB on 127.0.0.1:3306, moto and cargo-lambda in $WAREHOUSE_VENV"
