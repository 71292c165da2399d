# shellcheck shell=bash
# scripts/lib/common.sh - what scripts/test.sh and scripts/demo.sh both need:
# messages, commands with a deadline, Debian packages installed when missing.
# Sourced, never run; it defines functions and settings only, so sourcing it
# changes nothing else in the caller.
#
#   SMSOTP_APT_TIMEOUT  seconds per apt-get command (default 900)

APT_TIMEOUT="${SMSOTP_APT_TIMEOUT:-900}"

# Messages name the script that was run (test.sh, demo.sh), also from a
# function in a file it sourced.
warn() { printf '%s: warning: %s\n' "${0##*/}" "$*" >&2; }
die() {
    printf '%s: %s\n' "${0##*/}" "$*" >&2
    exit 1
}

# Run a command with a deadline. `timeout` puts the command in its own process
# group and, on expiry, signals the whole group (cargo, test binaries and
# whatever they started), then SIGKILLs it 30 s later if it is still there.
bounded() { # SECONDS COMMAND...
    local limit="$1"
    shift
    printf '+ %s\n' "$*" >&2
    timeout --kill-after=30s "$limit" "$@"
}

# Print those of the Debian packages PKG... that are not installed, one per
# line. `dpkg -s` also knows removed-but-not-purged packages; require
# "install ok installed".
missing_debian_packages() { # PKG...
    local pkg
    for pkg in "$@"; do
        if [[ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)" != "install ok installed" ]]; then
            printf '%s\n' "$pkg"
        fi
    done
}

# apt-get install PKG... (as root), never asking anything, each apt-get
# bounded; waits at most 2 minutes for another apt/dpkg to release its lock.
apt_install() { # PKG...
    export DEBIAN_FRONTEND=noninteractive
    bounded "$APT_TIMEOUT" apt-get -o DPkg::Lock::Timeout=120 -q update </dev/null
    bounded "$APT_TIMEOUT" apt-get -o DPkg::Lock::Timeout=120 -q install -y \
        --no-install-recommends "$@" </dev/null
}
