#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# scripts/test.sh - THE test command for smsotp (README and .ci/run call it).
#
#   bash scripts/test.sh
#
# 1. makes sure the system packages the end-to-end tests need are installed
#    (installs them with apt-get when run as root, otherwise says what to do);
# 2. cargo fmt --check, the PAM-module dependency check, clippy -D warnings;
# 3. builds everything (debug, all targets) and the release artefacts;
# 4. cargo test --workspace (the end-to-end tests use the target/debug
#    binaries built in step 3, real libpam, sshd and sudo; they need root).
#
# Every step runs under `timeout`, so nothing waits forever. Environment:
#   SMSOTP_STEP_TIMEOUT  seconds per cargo step      (default 1800)
#   SMSOTP_APT_TIMEOUT   seconds per apt-get command (default 900)
#   SMSOTP_SKIP_APT=1    do not check or install system packages
#   SMSOTP_FUZZ_SECONDS  seconds per fuzz target (default 10; 0 skips fuzzing)
set -euo pipefail

# System packages: libpam0g-dev links the module; pamtester, openssh-server,
# sudo and passwd (useradd/chpasswd) are driven by the end-to-end tests;
# openssh-client (ssh, ssh-keygen), login and util-linux (unshare, setpriv)
# by the sshd/sudo/console tests; dpkg-dev (dpkg-shlibdeps), binutils
# (strip) and lintian build and check the Debian package; libfaketime
# (wall-clock jumps) and python3 (requests as another uid) are used by
# tests/tests/{faults,security_scan}.rs; systemd-container (systemd-nspawn)
# and debootstrap boot the package under a real systemd in
# tests/tests/{deb,systemd}.rs (they skip only where nspawn cannot run, and
# fail instead when CI is set); postgresql (initdb, pg_ctl, psql) for the
# throwaway clusters of the store conformance and fleet tests
# (tests/src/pg.rs; they fail when CI is set and it is missing); slapd and
# ldap-utils for the directory tests (tests/src/slapd.rs, same rule);
# python3-venv for the cached verifier venv (scripts/test-venv.sh);
# libpam-google-authenticator and libpam-oath, the peers of the benchmark smoke.
APT_PACKAGES=(libpam0g-dev pamtester openssh-server openssh-client sudo passwd login util-linux dpkg-dev binutils lintian dbus-daemon openssl sqlite3 libfaketime python3 systemd-container debootstrap postgresql slapd ldap-utils python3-venv libpam-google-authenticator libpam-oath)
# The PAM module runs inside sshd and sudo: none of these may be in its
# normal dependency tree (see DESIGN.md).
FORBIDDEN_IN_PAM_MODULE='tokio|reqwest|hyper|rustls|openssl'

STEP_TIMEOUT="${SMSOTP_STEP_TIMEOUT:-1800}"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# die, bounded, missing_debian_packages, apt_install; APT_TIMEOUT.
# shellcheck source=lib/common.sh
source "$ROOT/scripts/lib/common.sh"

CURRENT_STEP="(start)"
STARTED_AT=$SECONDS
STEP_STARTED_AT=$SECONDS
declare -a STEP_TIMES=()

section() {
    finish_step
    CURRENT_STEP="$1"
    STEP_STARTED_AT=$SECONDS
    printf '\n==== %s ====\n' "$1"
}

finish_step() {
    if [[ "$CURRENT_STEP" != "(start)" ]]; then
        STEP_TIMES+=("$(printf '%5ss  %s' "$((SECONDS - STEP_STARTED_AT))" "$CURRENT_STEP")")
    fi
}

on_exit() {
    local rc=$?
    if ((rc != 0)); then
        printf '\n!!!! FAILED (exit %s) in step: %s\n' "$rc" "$CURRENT_STEP" >&2
        if ((rc == 124 || rc == 137)); then
            printf '!!!! the step ran out of time (limit %ss; see SMSOTP_STEP_TIMEOUT)\n' "$STEP_TIMEOUT" >&2
        fi
    fi
}
trap on_exit EXIT

# --- 1. system packages -----------------------------------------------------
ensure_apt_packages() {
    local missing=()
    mapfile -t missing < <(missing_debian_packages "${APT_PACKAGES[@]}")
    # rustc needs a C linker; the official Rust images have one, minimal
    # systems may not.
    if ! command -v cc >/dev/null 2>&1; then
        missing+=(gcc libc6-dev)
    fi
    if ((${#missing[@]} == 0)); then
        echo "all present: ${APT_PACKAGES[*]}"
        return 0
    fi
    echo "missing: ${missing[*]}"
    if ((EUID != 0)); then
        die "these Debian packages are missing and installing them needs root:
    apt-get update && apt-get install -y --no-install-recommends ${missing[*]}
  (as root, or prefixed with sudo; SMSOTP_SKIP_APT=1 skips this check)"
    fi
    apt_install "${missing[@]}"
}

section "system packages"
if [[ "${SMSOTP_SKIP_APT:-0}" == 1 ]]; then
    echo "skipped (SMSOTP_SKIP_APT=1)"
elif ! command -v dpkg-query >/dev/null 2>&1; then
    echo "not a Debian-like system (no dpkg-query); make sure these are installed: ${APT_PACKAGES[*]}"
else
    ensure_apt_packages
fi

section "toolchain"
command -v cargo >/dev/null 2>&1 || die "cargo not found on PATH (install Rust with rustup)"
for component in rustfmt clippy; do
    sub="${component/rustfmt/fmt}"
    if ! cargo "$sub" --version >/dev/null 2>&1; then
        if command -v rustup >/dev/null 2>&1; then
            bounded 600 rustup component add "$component" </dev/null
        else
            die "cargo $sub is not available and rustup is not on PATH to add $component"
        fi
    fi
done
cargo --version
cargo fmt --version
cargo clippy --version
if ((EUID != 0)); then
    echo "NOTE: not root; the end-to-end tests (real libpam, sshd, sudo, test users) need root and may skip or fail."
fi

# Keep cargo from ever asking anything.
exec </dev/null

# --- 2. static checks ---------------------------------------------------------
section "cargo fmt --check"
bounded 300 cargo fmt --all -- --check

section "pam_smsotp dependency check (no $FORBIDDEN_IN_PAM_MODULE)"
# One "name vX.Y.Z" per crate ("(*)" marks repeats in cargo's output).
tree="$(bounded 600 cargo tree -p pam_smsotp -e normal --prefix none | sed 's/ (\*)$//' | sort -u)"
# Match each forbidden crate and its family: "tokio v1.47.1",
# "rustls-pki-types v1.12.0", "openssl-sys v0.9.0", ...
if bad="$(grep -E "^(${FORBIDDEN_IN_PAM_MODULE})([-_][A-Za-z0-9_-]*)? v" <<<"$tree")" && [[ -n "$bad" ]]; then
    printf 'pam_smsotp must not depend on these crates (it runs inside sshd and sudo):\n%s\n' "$bad" >&2
    echo "how they get in:" >&2
    first="$(head -n1 <<<"$bad" | cut -d' ' -f1)"
    timeout 120 cargo tree -p pam_smsotp -e normal -i "$first" >&2 || true
    exit 1
fi
printf 'ok: %s crates in the normal dependency tree of pam_smsotp, none forbidden\n' "$(grep -c . <<<"$tree")"

section "cargo clippy -D warnings"
bounded "$STEP_TIMEOUT" cargo clippy --workspace --all-targets -- -D warnings

# --- 3. builds ----------------------------------------------------------------
section "cargo build --workspace --all-targets (debug)"
bounded "$STEP_TIMEOUT" cargo build --workspace --all-targets

section "cargo build --release (pam_smsotp, smsotpd, smsotpctl)"
bounded "$STEP_TIMEOUT" cargo build --release -p pam_smsotp -p smsotpd -p smsotpctl
for artefact in target/release/libpam_smsotp.so target/release/smsotpd target/release/smsotpctl; do
    [[ -f "$artefact" ]] || die "expected $artefact after the release build"
    printf '  %-32s %8s bytes\n' "$artefact" "$(stat -c %s "$artefact")"
done

section "Debian package (packaging/deb/build.sh --lintian)"
deb_out="$(bounded 600 bash packaging/deb/build.sh --no-build --lintian --out target/deb)"
SMSOTP_DEB="$(realpath "$(tail -n1 <<<"$deb_out")")"
[[ -f "$SMSOTP_DEB" ]] || die "build.sh did not produce a .deb"
# tests/tests/{deb,systemd}.rs install this one (in a container) instead of
# building their own.
export SMSOTP_DEB
printf '  %-32s %8s bytes\n' "$SMSOTP_DEB" "$(stat -c %s "$SMSOTP_DEB")"

section "shellcheck"
if command -v shellcheck >/dev/null 2>&1; then
    # -x: follow the files the scripts source (scripts/lib, scripts/demo),
    # which are also checked on their own.
    bounded 120 shellcheck -x scripts/*.sh scripts/lib/*.sh scripts/demo/*.sh \
        packaging/deb/build.sh packaging/deb/postinst packaging/deb/prerm packaging/deb/postrm
    bounded 60 shellcheck -s bash packaging/completions/smsotpd.bash
else
    echo "shellcheck not installed; skipped"
fi

# --- 4. tests -----------------------------------------------------------------
section "cargo test --workspace"
# The PyPI verifiers (standardwebhooks, prometheus-client) some tests use.
bounded 900 bash scripts/test-venv.sh
bounded "$STEP_TIMEOUT" cargo test --workspace

# A few seconds of the benchmarks (bench/, docs/BENCHMARKS.md): exit 1 on any
# wrong outcome (a refused login, a missing code), never on slowness.
section "benchmark smoke (wrong outcomes only, never timings)"
bounded 600 bash bench/smoke.sh

# --- 5. fuzzing (briefly) -----------------------------------------------------
# cargo-fuzz (libFuzzer) needs a nightly toolchain; fuzz/ is its own
# workspace so the nightly build and its sanitizer flags stay out of the
# product build. Each target runs a few seconds from the checked-in seeds
# into a throw-away corpus; a crash fails the step and leaves its input in
# fuzz/artifacts/TARGET/. Long runs: see docs/SECURITY.md.
FUZZ_SECONDS="${SMSOTP_FUZZ_SECONDS:-10}"
section "fuzz (${FUZZ_SECONDS}s per target)"
if ((FUZZ_SECONDS == 0)); then
    echo "skipped (SMSOTP_FUZZ_SECONDS=0)"
else
    if ! command -v rustup >/dev/null 2>&1; then
        die "fuzzing needs rustup (for a nightly toolchain); SMSOTP_FUZZ_SECONDS=0 skips it"
    fi
    if ! rustup run nightly rustc --version >/dev/null 2>&1; then
        bounded 900 rustup toolchain install nightly --profile minimal
    fi
    if ! cargo fuzz --version >/dev/null 2>&1; then
        bounded 900 cargo install cargo-fuzz --locked
    fi
    FUZZ_TMP="$(mktemp -d)"
    trap 'rc=$?; rm -rf "$FUZZ_TMP"; (exit "$rc"); on_exit' EXIT
    (
        cd fuzz
        bounded "$STEP_TIMEOUT" cargo +nightly fuzz build -O
        for target in $(cargo +nightly fuzz list); do
            mkdir -p "$FUZZ_TMP/$target"
            # libFuzzer writes new inputs into the first corpus directory
            # only, so the seeds stay as checked in.
            if ! bounded "$((FUZZ_SECONDS + 120))" cargo +nightly fuzz run -O "$target" \
                "$FUZZ_TMP/$target" "seeds/$target" -- \
                -max_total_time="$FUZZ_SECONDS" -timeout=20 -rss_limit_mb=2048 \
                -print_final_stats=1 >"$FUZZ_TMP/$target.log" 2>&1; then
                tail -n 60 "$FUZZ_TMP/$target.log" >&2
                die "fuzz target $target failed; the input is in fuzz/artifacts/$target/"
            fi
            printf '  %-20s %s executions, corpus %s files\n' "$target" \
                "$(sed -n 's/^stat::number_of_executed_units: *//p' "$FUZZ_TMP/$target.log")" \
                "$(find "$FUZZ_TMP/$target" "seeds/$target" -type f | wc -l)"
        done
    )
fi

finish_step
CURRENT_STEP="(done)"
printf '\n==== summary ====\n'
printf '%s\n' "${STEP_TIMES[@]}"
printf 'all checks passed in %ss\n' "$((SECONDS - STARTED_AT))"
