#!/usr/bin/env bash
# bench/smoke.sh - the benchmarks for a few seconds, as a test of their
# outcomes (scripts/test.sh calls it): every subject at concurrency 1 and 16
# for 1 s, the module load cost, and the daemon-only benchmark on every
# store. Exits 1 on any wrong outcome (refused login, missing code, a
# subject that could not run); timings are printed, never judged.
# Uses the debug smsotp-bench and the release smsotpd/libpam_smsotp.so that
# scripts/test.sh has built (SMSOTP_TARGET_DIR overrides the latter).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if ((EUID != 0)); then
    echo "bench/smoke.sh: skipped, needs root (test accounts, libpam)"
    exit 0
fi
export SMSOTP_TARGET_DIR="${SMSOTP_TARGET_DIR:-$ROOT/target/release}"
BENCH="$ROOT/target/debug/smsotp-bench"
# A no-op after scripts/test.sh built the workspace; never a stale harness.
cargo build -q -p smsotp-bench </dev/null
"$BENCH" --smoke --seconds 1 --concurrency 1,16 --pending 0 --dlopen 200 --callgrind 0 </dev/null
"$BENCH" daemon --seconds 1 --connections 1,16 </dev/null
