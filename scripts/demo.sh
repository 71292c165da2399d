#!/usr/bin/env bash
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

if [[ -t 1 ]]; then
    say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
else
    say() { printf '==> %s\n' "$*"; }
fi
info() { printf '    %s\n' "$*"; }
warn() { printf 'demo.sh: warning: %s\n' "$*" >&2; }
die() {
    printf 'demo.sh: %s\n' "$*" >&2
    exit 1
}

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

# ---------------------------------------------------------------------------
# manifest: one "KIND<TAB>VALUE" line per thing the demo created
#   dir       directory created (removed if empty)
#   statedir  directory created whose content is demo state (removed)
#   file      file created (removed)
#   backup    file replaced; original saved as FILE.smsotp-demo-bak (restored)
#   users-entry  line added to an existing users.toml (removed)
#   user      account created (removed)
#   pid       smsotpd started in the background (stopped)
#   systemd   smsotpd.service started with systemctl (stopped)
# ---------------------------------------------------------------------------
manifest_has() { [[ -f "$MANIFEST" ]] && grep -qxF "$1"$'\t'"$2" "$MANIFEST"; }
manifest_mentions() { [[ -f "$MANIFEST" ]] && grep -qE $'^[a-z-]+\t'"$(printf '%s' "$1" | sed 's/[].[^$*\\/]/\\&/g')\$" "$MANIFEST"; }
manifest_add() {
    manifest_has "$1" "$2" && return 0
    mkdir -p "$CONF_DIR"
    printf '%s\t%s\n' "$1" "$2" >>"$MANIFEST"
    chmod 0600 "$MANIFEST"
}
manifest_del() {
    [[ -f "$MANIFEST" ]] || return 0
    grep -vxF "$1"$'\t'"$2" "$MANIFEST" >"$MANIFEST.tmp" || true
    mv -f "$MANIFEST.tmp" "$MANIFEST"
}

# mkdir that remembers whether it created the directory.
make_dir() { # KIND MODE DIR
    if [[ ! -d "$3" ]]; then
        install -d -m "$2" "$3"
        manifest_add "$1" "$3"
        info "created $3"
    fi
}

# Install SRC as DST atomically (a temporary file in the same directory, then
# rename): sshd or sudo may have the old pam_smsotp.so mapped right now, and
# truncating a mapped library in place crashes them.
install_file() { # MODE SRC DST
    local mode="$1" src="$2" dst="$3" tmp
    if [[ -e "$dst" ]] && ! manifest_mentions "$dst"; then
        cp -p "$dst" "$dst.smsotp-demo-bak"
        manifest_add backup "$dst"
        info "saved the existing $dst as $dst.smsotp-demo-bak"
    elif [[ ! -e "$dst" ]]; then
        manifest_add file "$dst"
    fi
    tmp="$(mktemp "$(dirname "$dst")/.smsotp-demo.XXXXXX")"
    install -m "$mode" "$src" "$tmp"
    mv -f "$tmp" "$dst"
    info "installed $dst (mode $mode)"
}

# Write stdin to DST (mode MODE) only if DST does not exist yet.
write_new_file() { # MODE DST
    local mode="$1" dst="$2" tmp
    tmp="$(mktemp "$(dirname "$dst")/.smsotp-demo.XXXXXX")"
    cat >"$tmp"
    chmod "$mode" "$tmp"
    mv -f "$tmp" "$dst"
    manifest_add file "$dst"
    info "wrote $dst (mode $mode)"
}

# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
pam_security_dir() {
    local arch="" dir
    arch="$(gcc -print-multiarch 2>/dev/null || true)"
    [[ -n "$arch" ]] || arch="$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || true)"
    # Without gcc and dpkg-dev (--no-build on a bare machine) the multiarch
    # name is unknown: the globs find Debian's /lib/<multiarch>/security.
    for dir in ${arch:+"/lib/$arch/security" "/usr/lib/$arch/security"} /lib/security /usr/lib/security /lib64/security /usr/lib64/security /lib/*/security /usr/lib/*/security; do
        if [[ -e "$dir/pam_unix.so" ]]; then
            printf '%s\n' "$dir"
            return 0
        fi
    done
    die "cannot find the PAM module directory (no pam_unix.so next to it); is libpam installed?"
}

# A TOML string value `KEY = "VALUE"` at the top level of FILE (before any
# [table]). Good enough for the files the demo reads; the daemon's own parser
# is the authority.
toml_top_string() { # FILE KEY
    awk -v key="$2" '
        /^[[:space:]]*\[/ { exit }
        $0 ~ "^[[:space:]]*" key "[[:space:]]*=" {
            sub(/^[^=]*=[[:space:]]*"/, ""); sub(/".*$/, ""); print; exit
        }' "$1"
}

# The path of the first `type = "outbox"` provider in FILE, or the daemon's
# default when FILE configures no provider at all.
outbox_path() { # FILE
    awk -v def="$STATE_DIR/outbox.jsonl" '
        /^[[:space:]]*\[\[provider\]\]/ { inprov = 1; nprov++; type = ""; path = ""; next }
        /^[[:space:]]*\[/ { if (inprov && type == "outbox") { print (path == "" ? def : path); found = 1; exit } inprov = 0; next }
        inprov && /^[[:space:]]*type[[:space:]]*=/ { t = $0; sub(/^[^"]*"/, "", t); sub(/".*$/, "", t); type = t }
        inprov && /^[[:space:]]*path[[:space:]]*=/ { p = $0; sub(/^[^"]*"/, "", p); sub(/".*$/, "", p); path = p }
        inprov && type == "outbox" && path != "" { print path; found = 1; exit }
        END { if (!found) { if (inprov && type == "outbox") print (path == "" ? def : path); else if (nprov == 0) print def } }
    ' "$1"
}

# Is some process listening on the Unix socket PATH? /proc/net/unix lists
# every bound socket that is still open; a stale socket file is not in it.
socket_is_live() { # PATH
    [[ -S "$1" ]] && awk -v p="$1" '$NF == p { found = 1 } END { exit !found }' /proc/net/unix
}

# Is PID a running smsotpd?
is_smsotpd() { # PID
    [[ "$1" =~ ^[0-9]+$ ]] && [[ -r "/proc/$1/comm" ]] && [[ "$(cat "/proc/$1/comm" 2>/dev/null)" == smsotpd ]]
}

# Stop PID (TERM, then KILL after 10 s).
stop_pid() { # PID
    local pid="$1" i
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.2
    done
    warn "smsotpd ($pid) did not stop within 10 s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
}

systemd_is_init() { [[ -d /run/systemd/system ]]; }
unit_installed() { systemd_is_init && systemctl cat smsotpd.service >/dev/null 2>&1; }

# Number of lines in FILE (0 when it does not exist).
line_count() { if [[ -f "$1" ]]; then wc -l <"$1"; else echo 0; fi; }

# JSON string field KEY of the one-line object LINE, unescaped enough to print.
json_field() { # LINE KEY
    printf '%s\n' "$1" |
        sed -nE 's/.*"'"$2"'"[[:space:]]*:[[:space:]]*"(([^"\\]|\\.)*)".*/\1/p' |
        sed -e 's/\\"/"/g' -e 's/\\n/ /g' -e 's/\\\\/\\/g'
}

print_sms() { # JSON-LINE
    printf '📱 SMS to %s: %s\n' "$(json_field "$1" to)" "$(json_field "$1" body)"
}

# The code in an SMS body: the word after " is " in the default template,
# else the first 4-10 digit number standing on its own.
code_from_body() { # BODY
    local code
    code="$(sed -nE 's/.* is ([A-Za-z0-9]{4,10})\. .*/\1/p' <<<"$1" | head -n1)"
    [[ -n "$code" ]] || code="$(grep -oE '(^|[^A-Za-z0-9])[0-9]{4,10}([^A-Za-z0-9]|$)' <<<"$1" | head -n1 | tr -cd '0-9')"
    printf '%s' "$code"
}

# Wait (bounded) for the first line after line AFTER of OUTBOX that is
# addressed to the demo number; print it.
wait_for_sms() { # OUTBOX AFTER
    local outbox="$1" after="$2" deadline=$((SECONDS + OUTBOX_WAIT)) line
    while ((SECONDS < deadline)); do
        if [[ -f "$outbox" ]]; then
            line="$(tail -n +"$((after + 1))" "$outbox" | grep -F "\"$DEMO_MOBILE\"" | head -n1 || true)"
            if [[ -n "$line" ]]; then
                printf '%s\n' "$line"
                return 0
            fi
        fi
        sleep 0.2
    done
    return 1
}

# Debian packages the demo needs: libpam0g-dev to link the module, pamtester
# to log in, passwd for useradd/chpasswd. Installed only when missing.
ensure_apt_packages() {
    local missing=() pkg
    command -v dpkg-query >/dev/null 2>&1 || return 0 # not Debian: the tool checks below tell
    for pkg in "${APT_PACKAGES[@]}"; do
        if [[ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)" != "install ok installed" ]]; then
            missing+=("$pkg")
        fi
    done
    ((${#missing[@]})) || return 0
    say "Installing Debian packages: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive timeout 900 apt-get -o DPkg::Lock::Timeout=120 -q update </dev/null
    DEBIAN_FRONTEND=noninteractive timeout 900 apt-get -o DPkg::Lock::Timeout=120 -q install -y \
        --no-install-recommends "${missing[@]}" </dev/null
}

# ---------------------------------------------------------------------------
# uninstall
# ---------------------------------------------------------------------------
do_uninstall() {
    local force="$1" entries=() i kind value others
    say "Uninstalling the smsotp demo"
    if [[ -f "$MANIFEST" ]]; then
        mapfile -t entries <"$MANIFEST"
    else
        info "no $MANIFEST: nothing recorded; removing only the demo-named user and PAM service"
    fi

    # 1. stop what the demo started
    for ((i = ${#entries[@]} - 1; i >= 0; i--)); do
        kind="${entries[i]%%$'\t'*}"
        value="${entries[i]#*$'\t'}"
        case "$kind" in
        pid)
            if is_smsotpd "$value"; then
                stop_pid "$value"
                info "stopped smsotpd (pid $value)"
            fi
            ;;
        systemd)
            if systemd_is_init; then
                timeout 60 systemctl stop smsotpd.service || warn "systemctl stop smsotpd failed"
                info "stopped smsotpd.service"
            fi
            ;;
        esac
    done
    if [[ -f "$PID_FILE" ]] && ! is_smsotpd "$(cat "$PID_FILE" 2>/dev/null)"; then
        rm -f "$PID_FILE"
    fi

    # 2. the PAM service and the demo user (demo-named, marked)
    if [[ -f "$PAM_FILE" ]] && grep -qF "$MARKER" "$PAM_FILE"; then
        rm -f "$PAM_FILE"
        info "removed $PAM_FILE"
    elif [[ -f "$PAM_FILE" ]]; then
        warn "$PAM_FILE was not written by the demo; left alone"
    fi
    if getent passwd "$DEMO_USER" >/dev/null; then
        if [[ "$(getent passwd "$DEMO_USER" | cut -d: -f5)" == "$DEMO_GECOS" ]]; then
            timeout 60 userdel "$DEMO_USER" && info "removed user $DEMO_USER"
        else
            warn "user $DEMO_USER was not created by the demo; left alone"
        fi
    fi

    # 3. files, in reverse order of creation
    others=""
    if [[ -d /etc/pam.d ]]; then
        others="$(grep -lE '^[^#]*pam_smsotp\.so' /etc/pam.d/* 2>/dev/null | grep -vxF "$PAM_FILE" || true)"
    fi
    rm -f "$MANIFEST"
    for ((i = ${#entries[@]} - 1; i >= 0; i--)); do
        kind="${entries[i]%%$'\t'*}"
        value="${entries[i]#*$'\t'}"
        case "$kind" in
        file | backup)
            if [[ "$value" == */security/pam_smsotp.so && -n "$others" && "$force" != 1 ]]; then
                warn "kept $value: still used by $(tr '\n' ' ' <<<"$others")(use --force to remove it anyway)"
                continue
            fi
            if [[ "$kind" == backup && -e "$value.smsotp-demo-bak" ]]; then
                mv -f "$value.smsotp-demo-bak" "$value"
                info "restored the original $value"
            else
                rm -f "$value"
                info "removed $value"
            fi
            ;;
        users-entry)
            if [[ -f "$value" ]]; then
                sed -i "/^[[:space:]]*\"\\{0,1\\}$DEMO_USER\"\\{0,1\\}[[:space:]]*=/d" "$value"
                info "removed $DEMO_USER from $value"
            fi
            ;;
        statedir)
            rm -rf -- "$value"
            info "removed $value and its content"
            ;;
        dir)
            if rmdir "$value" 2>/dev/null; then
                info "removed $value"
            elif [[ -d "$value" ]]; then
                info "kept $value (not empty)"
            fi
            ;;
        esac
    done
    # Reload a daemon that the demo did not start, so it forgets the user.
    if unit_installed && systemctl is-active --quiet smsotpd.service; then
        timeout 60 systemctl reload smsotpd.service || true
    fi
    say "Done. The machine is as it was before the demo (see the lines above for anything kept)."
}

# ---------------------------------------------------------------------------
# install + demonstrate
# ---------------------------------------------------------------------------
start_daemon() { # CONF SOCKET
    local conf="$1" sock="$2" pid deadline started_by=""
    # Under systemd, when the unit is installed (a package did it), use it.
    if unit_installed; then
        if systemctl is-active --quiet smsotpd.service; then
            timeout 60 systemctl reload smsotpd.service
            info "smsotpd.service was running; reloaded it (users.toml)"
        else
            timeout 90 systemctl start smsotpd.service
            manifest_add systemd smsotpd.service
            info "started smsotpd.service (it runs the unit's ExecStart, not necessarily $SBIN/smsotpd)"
        fi
        started_by=systemd
    else
        # Our own background daemon from an earlier run: restart it so that it
        # runs the binary just installed and reads the current config.
        if [[ -f "$PID_FILE" ]] && is_smsotpd "$(cat "$PID_FILE")"; then
            pid="$(cat "$PID_FILE")"
            if manifest_has pid "$pid"; then
                stop_pid "$pid"
                manifest_del pid "$pid"
                info "stopped the smsotpd an earlier demo run started (pid $pid)"
            fi
        fi
        if socket_is_live "$sock"; then
            warn "something not started by this script already listens on $sock;" \
                "using it as it is (send it SIGHUP if users.toml changed)"
            started_by=foreign
        else
            [[ -S "$sock" ]] && rm -f "$sock" # stale: its process is gone
            if [[ ! -e "$LOG_FILE" ]]; then
                install -m 0600 /dev/null "$LOG_FILE"
                manifest_add file "$LOG_FILE"
            fi
            # The same umask as the unit's UMask=0077; setsid so the daemon
            # outlives this script and the terminal.
            (
                umask 0077
                exec setsid "$SBIN/smsotpd" --config "$conf" </dev/null >>"$LOG_FILE" 2>&1
            ) &
            pid=$!
            printf '%s\n' "$pid" >"$PID_FILE"
            manifest_add pid "$pid"
            info "started $SBIN/smsotpd --config $conf (pid $pid, log $LOG_FILE)"
            started_by=background
        fi
    fi

    # Wait, bounded, for the socket; give up early if the daemon died.
    deadline=$((SECONDS + SOCKET_WAIT))
    until socket_is_live "$sock"; do
        if [[ "$started_by" == background ]] && ! kill -0 "$pid" 2>/dev/null; then
            tail -n 20 "$LOG_FILE" >&2 || true
            die "smsotpd exited during start-up (log above, full log in $LOG_FILE)"
        fi
        if ((SECONDS >= deadline)); then
            [[ "$started_by" == background ]] && tail -n 20 "$LOG_FILE" >&2
            [[ "$started_by" == systemd ]] && timeout 10 journalctl -u smsotpd.service -n 20 --no-pager >&2
            die "no smsotpd listening on $sock after ${SOCKET_WAIT}s"
        fi
        sleep 0.2
    done
    info "smsotpd is listening on $sock"
}

# Interactive login on a terminal; the "SMS" is printed as it lands.
demo_interactive() { # OUTBOX
    local outbox="$1" tail_fd tail_pid show_pid rc=0
    say "Log in as $DEMO_USER through the PAM service $PAM_SERVICE"
    info "password: $DEMO_PASSWORD    then type the code from the SMS shown below"
    info "(try a wrong code first if you like; 'r' asks for a new one)"
    echo
    if [[ -z "$outbox" ]]; then
        pamtester "$PAM_SERVICE" "$DEMO_USER" authenticate || rc=$?
        return 0
    fi
    # tail --pid: even if this script is killed, tail follows within a second.
    exec {tail_fd}< <(exec tail --pid=$$ -n 0 -F "$outbox" 2>/dev/null)
    tail_pid=$!
    (
        while IFS= read -r line; do
            printf '\n'
            print_sms "$line"
        done <&"$tail_fd"
    ) &
    show_pid=$!
    pamtester "$PAM_SERVICE" "$DEMO_USER" authenticate || rc=$?
    kill "$tail_pid" "$show_pid" 2>/dev/null || true
    exec {tail_fd}<&-
    wait "$show_pid" 2>/dev/null || true
    echo
    if ((rc == 0)); then
        say "Logged in with password + SMS code."
    else
        say "pamtester refused the login (exit $rc)."
    fi
}

# One scripted login through a coprocess. ANSWER is "right" or "wrong".
# Sets LOGIN_OUTPUT and LOGIN_RC.
scripted_login() { # OUTBOX ANSWER
    local outbox="$1" answer="$2" before line body code send out pid in_fd deadline l
    out="$(mktemp)"
    before="$(line_count "$outbox")"
    # stdout/stderr go to a file (prompts carry no newline; a file is easier
    # to poll than a pipe); stdbuf -o0 so nothing waits in stdio buffers.
    coproc PT { exec stdbuf -o0 -e0 pamtester "$PAM_SERVICE" "$DEMO_USER" authenticate >"$out" 2>&1; }
    pid=$PT_PID
    in_fd=${PT[1]}
    # pam_unix reads the password with one read(); the code is written only
    # after the SMS exists, i.e. after that read, so the two never merge.
    printf '%s\n' "$DEMO_PASSWORD" >&"$in_fd"
    if line="$(wait_for_sms "$outbox" "$before")"; then
        print_sms "$line"
        body="$(json_field "$line" body)"
        code="$(code_from_body "$body")"
        [[ -n "$code" ]] || warn "could not find a code in: $body"
    else
        warn "no SMS for $DEMO_MOBILE in $outbox within ${OUTBOX_WAIT}s"
        code=""
    fi
    if [[ -n "$code" ]]; then
        if [[ "$answer" == right ]]; then
            send="$code"
        else
            # Same length, every character different: surely wrong.
            send="$(tr '0-9A-Za-z' '1-90B-ZAb-za' <<<"$code")"
        fi
        info "typing the $answer code: $send"
        printf '%s\n' "$send" >&"$in_fd"
        if [[ "$answer" == wrong ]]; then
            # Wait (bounded) for the refusal, then hang up: a closed
            # conversation ends the login.
            deadline=$((SECONDS + 10))
            until grep -qiE 'wrong code|tries left|too many' "$out" || ((SECONDS >= deadline)); do
                sleep 0.2
            done
        fi
    fi
    exec {in_fd}>&-
    # Wait (bounded) for pamtester to finish.
    deadline=$((SECONDS + PAMTESTER_WAIT))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
        sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
        warn "pamtester still running after ${PAMTESTER_WAIT}s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    LOGIN_RC=0
    wait "$pid" 2>/dev/null || LOGIN_RC=$?
    LOGIN_OUTPUT="$(cat "$out")"
    rm -f "$out"
    while IFS= read -r l; do printf '    | %s\n' "$l"; done <<<"$LOGIN_OUTPUT"
    echo
}

demo_scripted() { # OUTBOX
    local outbox="$1" failed=0
    say "Scripted login 1: password + the code from the SMS (expect success)"
    scripted_login "$outbox" right
    if [[ "$LOGIN_OUTPUT" != *"Code sent to"* ]]; then
        warn "the code prompt never appeared: is $PAM_FILE used at all?"
        failed=1
    elif ((LOGIN_RC == 0)) && [[ "$LOGIN_OUTPUT" == *"successfully authenticated"* ]]; then
        info "OK: accepted (pamtester: successfully authenticated)"
    else
        warn "the right code was not accepted (pamtester exit $LOGIN_RC)"
        failed=1
    fi

    say "Scripted login 2: password + a wrong code (expect refusal)"
    scripted_login "$outbox" wrong
    if [[ "$LOGIN_OUTPUT" == *"successfully authenticated"* ]] || ((LOGIN_RC == 0)); then
        warn "a WRONG code was accepted"
        failed=1
    elif [[ "$LOGIN_OUTPUT" == *"Wrong code"* ]]; then
        info "OK: refused ($(grep -m1 -oE 'Wrong code\. [^.]*\.' <<<"$LOGIN_OUTPUT"))"
    else
        warn "refused, but without the 'Wrong code' message (pamtester exit $LOGIN_RC)"
        failed=1
    fi
    return "$failed"
}

do_install() {
    local build="$1" interactive="$2" secdir conf_sock sock users_file outbox out tool
    ((EUID == 0)) || die "run me as root: I install a PAM module, create a user and write /etc/pam.d (as root: bash scripts/demo.sh; or sudo bash scripts/demo.sh)"
    ensure_apt_packages
    for tool in pamtester useradd chpasswd setsid stdbuf timeout install; do
        command -v "$tool" >/dev/null 2>&1 ||
            die "$tool not found (apt-get install -y pamtester passwd coreutils util-linux)"
    done
    [[ -d /etc/pam.d ]] || die "no /etc/pam.d: Linux-PAM is not installed"

    # 1. build
    if [[ "$build" == 1 ]]; then
        say "Building the release artefacts"
        command -v cargo >/dev/null 2>&1 ||
            die "cargo not on root's PATH; try: sudo env PATH=\"\$PATH\" bash scripts/demo.sh"
        (cd "$ROOT" && timeout --kill-after=30s "$BUILD_TIMEOUT" \
            cargo build --release -p pam_smsotp -p smsotpd -p smsotpctl </dev/null)
    fi
    local art
    for art in libpam_smsotp.so smsotpd smsotpctl; do
        [[ -f "$ROOT/target/release/$art" ]] || die "missing $ROOT/target/release/$art (build failed?)"
    done

    # 2. install
    say "Installing"
    # First, so that the manifest (kept in it) records whether it was new.
    make_dir dir 0755 "$CONF_DIR"
    secdir="$(pam_security_dir)"
    install_file 0644 "$ROOT/target/release/libpam_smsotp.so" "$secdir/pam_smsotp.so"
    install_file 0755 "$ROOT/target/release/smsotpd" "$SBIN/smsotpd"
    install_file 0755 "$ROOT/target/release/smsotpctl" "$SBIN/smsotpctl"

    # 3. configuration
    say "Configuring"
    make_dir statedir 0700 "$STATE_DIR"
    make_dir statedir 0755 "$RUN_DIR"
    if [[ ! -e "$CONF" ]]; then
        write_new_file 0600 "$CONF" <<EOF
# /etc/smsotp/smsotpd.toml - $MARKER.
# Codes go to a local file (the \`outbox\` provider) instead of a real SMS
# gateway; see config/examples/http-provider.toml for a real one.

socket = "$RUN_DIR/smsotpd.sock"
users_file = "$USERS_FILE_DEFAULT"

[otp]
length = 6
numeric = true
expiry_seconds = 300
max_attempts = 3
max_resends = 3

[message]
template = "Your login code for {{host}} is {{code}}. It expires in {{expiry_minutes}} minutes."

[[provider]]
type = "outbox"
path = "$STATE_DIR/outbox.jsonl"
EOF
        else
        info "kept the existing $CONF"
    fi
    conf_sock="$(toml_top_string "$CONF" socket)"
    sock="${conf_sock:-$RUN_DIR/smsotpd.sock}"
    # The module (root, inside the PAM service) talks to the root-only
    # socket: no other local user can fill its queue.
    conf_root_sock="$(toml_top_string "$CONF" root_socket)"
    root_sock="${conf_root_sock:-$RUN_DIR/root.sock}"
    users_file="$(toml_top_string "$CONF" users_file)"
    users_file="${users_file:-$USERS_FILE_DEFAULT}"
    outbox="$(outbox_path "$CONF")"
    if [[ -z "$outbox" ]]; then
        [[ "$interactive" == 1 ]] ||
            die "$CONF has no outbox provider, so a script cannot read the code; run on a terminal, or move it aside"
        warn "$CONF has no outbox provider: the code goes to a real SMS gateway"
    fi

    if [[ ! -e "$users_file" ]]; then
        write_new_file 0600 "$users_file" <<EOF
# $users_file - login name = mobile number in E.164 form.
# $MARKER.
[users]
$DEMO_USER = "$DEMO_MOBILE"
EOF
    elif grep -qE "^[[:space:]]*\"?$DEMO_USER\"?[[:space:]]*=" "$users_file"; then
        info "$users_file already lists $DEMO_USER"
    else
        if grep -qE '^[[:space:]]*\[users\][[:space:]]*(#.*)?$' "$users_file"; then
            sed -i -E "0,/^[[:space:]]*\\[users\\][[:space:]]*(#.*)?\$/s//&\\n$DEMO_USER = \"$DEMO_MOBILE\"/" "$users_file"
        else
            printf '\n[users]\n%s = "%s"\n' "$DEMO_USER" "$DEMO_MOBILE" >>"$users_file"
        fi
        manifest_add users-entry "$users_file"
        info "added $DEMO_USER = \"$DEMO_MOBILE\" to $users_file"
    fi

    if ! out="$(timeout 30 "$SBIN/smsotpd" --config "$CONF" --check-config 2>&1)"; then
        printf '%s\n' "$out" >&2
        die "smsotpd --check-config rejected $CONF"
    fi
    info "smsotpd --check-config: ok"

    # 4. the demo user and its PAM service
    say "Creating the demo user and PAM service"
    if ! getent passwd "$DEMO_USER" >/dev/null; then
        timeout 60 useradd --no-create-home --shell /usr/sbin/nologin --comment "$DEMO_GECOS" "$DEMO_USER"
        manifest_add user "$DEMO_USER"
        info "created user $DEMO_USER"
    fi
    printf '%s:%s\n' "$DEMO_USER" "$DEMO_PASSWORD" | timeout 60 chpasswd
    info "password of $DEMO_USER: $DEMO_PASSWORD"
    if [[ -f "$PAM_FILE" ]] && ! grep -qF "$MARKER" "$PAM_FILE"; then
        die "$PAM_FILE exists and was not written by the demo; not touching it"
    fi
    cat >"$PAM_FILE.tmp" <<EOF
#%PAM-1.0
# /etc/pam.d/$PAM_SERVICE - $MARKER.
# Remove with: scripts/demo.sh --uninstall
# The password first, then the SMS code. (No @include: the demo must not
# depend on, or change, the system's common-* stacks.)
auth     required   pam_unix.so nodelay
auth     required   pam_smsotp.so socket=$root_sock
account  required   pam_unix.so
session  required   pam_unix.so
EOF
    chmod 0644 "$PAM_FILE.tmp"
    mv -f "$PAM_FILE.tmp" "$PAM_FILE"
    info "wrote $PAM_FILE"

    # 5. the daemon
    say "Starting smsotpd"
    start_daemon "$CONF" "$sock"

    # 6. a login
    local rc=0
    if [[ "$interactive" == 1 ]]; then
        demo_interactive "$outbox"
    else
        demo_scripted "$outbox" || rc=$?
    fi

    say "What the demo set up"
    info "PAM module     $secdir/pam_smsotp.so"
    info "daemon, CLI    $SBIN/smsotpd, $SBIN/smsotpctl"
    info "config         $CONF, $users_file"
    info "PAM service    $PAM_FILE  (user $DEMO_USER, password $DEMO_PASSWORD)"
    info "socket         $sock"
    [[ -n "$outbox" ]] && info "outbox (SMS)   $outbox"
    if [[ -f "$PID_FILE" ]] && is_smsotpd "$(cat "$PID_FILE")"; then
        info "daemon         pid $(cat "$PID_FILE"), log $LOG_FILE"
    fi
    info "try again      pamtester $PAM_SERVICE $DEMO_USER authenticate"
    info "clean up       bash scripts/demo.sh --uninstall   (as root)"
    if ((rc != 0)); then
        die "the demonstration FAILED (see the warnings above)"
    fi
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
    fi
}

main "$@"
