#!/usr/bin/env bash
# The test command: sets up what is missing, then format check, clippy with
# warnings as errors, and every test (unit, property and integration tests
# against the real MariaDB and a moto server the tests start themselves).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# The local pipeline's end-to-end test runs the function binaries themselves.
cargo build --workspace --bins
cargo test --workspace
