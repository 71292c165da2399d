#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# scripts/demo.sh - set smsotp up on this machine and log in with an SMS code.
#
#   bash scripts/demo.sh              build, install, start, demonstrate
#   bash scripts/demo.sh --uninstall  undo everything the demo did
#
# As root (or prefixed with sudo); the script itself never calls sudo.
#
# What it does (as root):
#   * installs the Debian packages it needs when missing (libpam0g-dev,
#     pamtester, passwd);
#   * cargo build --release of pam_smsotp, smsotpd and smsotpctl;
#   * installs pam_smsotp.so into the multiarch PAM directory (0644) and
#     smsotpd, smsotpctl into /usr/local/sbin;
#   * writes /etc/smsotp/smsotpd.toml (only if absent; codes go to the
#     `outbox` provider, /var/lib/smsotp/outbox.jsonl, instead of a real SMS
#     gateway) and adds the demo user to /etc/smsotp/users.toml;
#   * creates the user `smsotp-demo` (password `demo-password`) and the PAM
#     service /etc/pam.d/smsotp-demo (password, then SMS code);
#   * starts smsotpd (systemctl when systemd runs the machine and the unit is
#     installed; otherwise in the background, pid file /run/smsotp/smsotpd.pid,
#     log /var/log/smsotpd.log) and waits for its socket;
#   * logs in with pamtester: interactively on a terminal (the "SMS" is
#     printed as it arrives), scripted otherwise (CI): the right code is
#     accepted, a wrong one refused.
#
# The parts: scripts/demo/install.sh (steps up to the daemon),
# scripts/demo/demonstrate.sh (the login), scripts/demo/uninstall.sh, with
# scripts/demo/state.sh (the manifest) and scripts/lib/common.sh (shared
# with scripts/test.sh). This file holds the settings and the command line.
#
# Everything it creates is listed in /etc/smsotp/.demo-manifest, which
# --uninstall reads; things that were there before are left alone (files it
# had to replace are backed up as FILE.smsotp-demo-bak and restored).
# Every wait is bounded (except, on a terminal, for you typing).
set -euo pipefail

DEMO_USER="smsotp-demo"
DEMO_PASSWORD="demo-password"
DEMO_MOBILE="+15551234567"
DEMO_GECOS="smsotp demo user"
PAM_SERVICE="smsotp-demo"
PAM_FILE="/etc/pam.d/$PAM_SERVICE"
MARKER="written by smsotp scripts/demo.sh"

CONF_DIR="/etc/smsotp"
CONF="$CONF_DIR/smsotpd.toml"
USERS_FILE_DEFAULT="$CONF_DIR/users.toml"
MANIFEST="$CONF_DIR/.demo-manifest"
STATE_DIR="/var/lib/smsotp"
RUN_DIR="/run/smsotp"
PID_FILE="$RUN_DIR/smsotpd.pid"
LOG_FILE="/var/log/smsotpd.log"
SBIN="/usr/local/sbin"
APT_PACKAGES=(libpam0g-dev pamtester passwd)

BUILD_TIMEOUT="${SMSOTP_BUILD_TIMEOUT:-1800}"
SOCKET_WAIT=20       # seconds for the daemon's socket to appear
OUTBOX_WAIT=15       # seconds for a code to land in the outbox
PAMTESTER_WAIT=40    # seconds for a whole scripted login

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# warn, die, bounded, missing_debian_packages, apt_install.
# shellcheck source=lib/common.sh
source "$ROOT/scripts/lib/common.sh"
# shellcheck source=demo/state.sh
source "$ROOT/scripts/demo/state.sh"
# shellcheck source=demo/install.sh
source "$ROOT/scripts/demo/install.sh"
# shellcheck source=demo/demonstrate.sh
source "$ROOT/scripts/demo/demonstrate.sh"
# shellcheck source=demo/uninstall.sh
source "$ROOT/scripts/demo/uninstall.sh"

if [[ -t 1 ]]; then
    say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
else
    say() { printf '==> %s\n' "$*"; }
fi
info() { printf '    %s\n' "$*"; }

usage() {
    cat <<EOF
usage: bash scripts/demo.sh [--no-build] [--non-interactive]    (as root)
       bash scripts/demo.sh --uninstall [--force]

  --no-build         use the existing target/release artefacts
  --non-interactive  scripted login even when stdin is a terminal
  --uninstall        remove what the demo installed and stop what it started
  --force            with --uninstall: remove pam_smsotp.so even if another
                     /etc/pam.d file still uses it
EOF
}

main() {
    local uninstall=0 force=0 build=1 interactive=0
    [[ -t 0 ]] && interactive=1
    while (($#)); do
        case "$1" in
        --uninstall) uninstall=1 ;;
        --force) force=1 ;;
        --no-build) build=0 ;;
        --non-interactive) interactive=0 ;;
        -h | --help)
            usage
            return 0
            ;;
        *)
            usage >&2
            return 2
            ;;
        esac
        shift
    done
    if ((uninstall)); then
        ((EUID == 0)) || die "run me as root: bash scripts/demo.sh --uninstall (as root, or with sudo)"
        do_uninstall "$force"
    else
        ((interactive)) || exec </dev/null
        do_install "$build" "$interactive"
        do_demonstrate "$interactive"
    fi
}

main "$@"
