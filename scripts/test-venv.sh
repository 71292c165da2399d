#!/usr/bin/env bash
# scripts/test-venv.sh - the Python verifiers some tests check our output
# with, written by others: `standardwebhooks` (webhook signatures,
# daemon/tests/webhook_standard.rs) and `prometheus-client`'s text parser
# (tests/tests/metrics.rs). Kept in one cached venv, made on first use;
# prints the venv's python. Tests call it, and scripts/test.sh once before
# them. Concurrent callers wait on a lock, so the venv is built once.
#
#   SMSOTP_TEST_VENV  where the venv lives (default /var/cache/smsotp-test/venv-webhooks)
set -euo pipefail
VENV="${SMSOTP_TEST_VENV:-/var/cache/smsotp-test/venv-webhooks}"
# Pinned: a test that checks our output against a verifier must not change
# verdict because the verifier did.
PACKAGES=(standardwebhooks==1.1.0 prometheus-client==0.26.0)
STAMP="$VENV/.smsotp-packages"
mkdir -p "$(dirname "$VENV")"
exec 9>"$VENV.lock"
flock -w 600 9
if [[ "$(cat "$STAMP" 2>/dev/null || true)" != "${PACKAGES[*]}" ]]; then
    rm -rf "$VENV"
    /usr/bin/python3 -m venv "$VENV" >&2
    timeout 600 "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PACKAGES[@]}" >&2
    printf '%s' "${PACKAGES[*]}" >"$STAMP"
fi
printf '%s\n' "$VENV/bin/python"
