#!/usr/bin/env bash
# Lints the SAM template (template.yaml at the repository root) with the
# project's pinned cfn-lint from .venv (installed by scripts/setup.sh with
# moto[server]). cfn-lint validates the SAM resources against SAM's own schema;
# it needs no aws-sam-translator. Exits non-zero on any error or warning.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CFN_LINT="$ROOT/.venv/bin/cfn-lint"

if [ ! -x "$CFN_LINT" ]; then
  printf 'lint-template: ERROR: %s is missing: run scripts/setup.sh (it creates .venv with moto[server], which brings cfn-lint)\n' "$CFN_LINT" >&2
  exit 2
fi

cd "$ROOT"
if "$CFN_LINT" template.yaml; then
  printf 'lint-template: template.yaml passes %s\n' "$("$CFN_LINT" --version)" >&2
else
  status=$?
  printf 'lint-template: template.yaml has cfn-lint findings (exit %s), listed above\n' "$status" >&2
  exit "$status"
fi
