#!/usr/bin/env bash
# bench/run.sh - THE benchmark command (docs/BENCHMARKS.md).
#
#   sudo bash bench/run.sh [smsotp-bench options, e.g. --seconds 10 --perf /tmp/perf]
#
# Installs the peers (libpam-google-authenticator, libpam-oath), valgrind
# (instructions per login) and binutils (readelf) if missing,
# builds pam_smsotp, smsotpd, smsotpctl and smsotp-bench in release mode, and runs
# every subject at concurrency 1, 16 and 64, then the module load cost and
# instructions per login (callgrind). The table goes to stdout and to
# bench/results/latest.md. A benchmark, not a test: it never fails on
# slowness. Environment:
#   SMSOTP_TARGET_DIR   use smsotpd/libpam_smsotp.so from there instead of
#                       building (e.g. another checkout's target/release)
#   SMSOTP_SKIP_APT=1   do not install the peer modules
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
((EUID == 0)) || { echo "bench/run.sh: run as root (it drives libpam for test accounts)" >&2; exit 1; }
if [[ "${SMSOTP_SKIP_APT:-0}" != 1 ]]; then
    missing=()
    for pkg in libpam-google-authenticator libpam-oath libpam0g-dev valgrind binutils; do
        [[ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)" == "install ok installed" ]] || missing+=("$pkg")
    done
    if ((${#missing[@]})); then
        export DEBIAN_FRONTEND=noninteractive
        timeout 900 apt-get -o DPkg::Lock::Timeout=120 -q update </dev/null
        timeout 900 apt-get -o DPkg::Lock::Timeout=120 -q install -y --no-install-recommends "${missing[@]}" </dev/null
    fi
fi
timeout 3600 cargo build --release -p smsotp-bench </dev/null
if [[ -z "${SMSOTP_TARGET_DIR:-}" ]]; then
    # The same package set as scripts/test.sh and packaging/deb/build.sh, so
    # features unify the same way and the shipped artefacts are not rebuilt.
    timeout 3600 cargo build --release -p pam_smsotp -p smsotpd -p smsotpctl </dev/null
fi
TARGET="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
export SMSOTP_TARGET_DIR="${SMSOTP_TARGET_DIR:-$TARGET/release}"
mkdir -p bench/results
timeout 3600 "$TARGET/release/smsotp-bench" --out bench/results/latest.md \
    --callgrind-dir bench/results/callgrind "$@" </dev/null
