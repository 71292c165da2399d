# shellcheck shell=bash
# scripts/demo/install.sh - build, install, configure and start smsotp for
# the demo, recording everything in the manifest (scripts/demo/state.sh).
# Sourced by scripts/demo.sh, whose settings (CONF, RUN_DIR, ...) it uses;
# checked alone, this file looks to shellcheck as if CONF were a misspelt `conf`.
# shellcheck disable=SC2153

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

# Debian packages the demo needs: libpam0g-dev to link the module, pamtester
# to log in, passwd for useradd/chpasswd. Installed only when missing.
ensure_apt_packages() {
    local missing=()
    command -v dpkg-query >/dev/null 2>&1 || return 0 # not Debian: the tool checks below tell
    mapfile -t missing < <(missing_debian_packages "${APT_PACKAGES[@]}")
    ((${#missing[@]})) || return 0
    say "Installing Debian packages: ${missing[*]}"
    apt_install "${missing[@]}"
}

# Step 5: smsotpd through its unit when systemd has one installed, else in
# the background; then wait, bounded, for it to listen on SOCKET.
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

# Steps 1-5 of the demo: build, install, configure, the demo user and its
# PAM service, the daemon. Sets SECDIR (where pam_smsotp.so went), SOCK,
# USERS_FILE and OUTBOX (empty when the config sends real SMS) for
# do_demonstrate.
do_install() {
    local build="$1" interactive="$2" conf_sock conf_root_sock root_sock out tool
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
    SECDIR="$(pam_security_dir)"
    install_file 0644 "$ROOT/target/release/libpam_smsotp.so" "$SECDIR/pam_smsotp.so"
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
    SOCK="${conf_sock:-$RUN_DIR/smsotpd.sock}"
    # The module (root, inside the PAM service) talks to the root-only
    # socket: no other local user can fill its queue.
    conf_root_sock="$(toml_top_string "$CONF" root_socket)"
    root_sock="${conf_root_sock:-$RUN_DIR/root.sock}"
    USERS_FILE="$(toml_top_string "$CONF" users_file)"
    USERS_FILE="${USERS_FILE:-$USERS_FILE_DEFAULT}"
    OUTBOX="$(outbox_path "$CONF")"
    if [[ -z "$OUTBOX" ]]; then
        [[ "$interactive" == 1 ]] ||
            die "$CONF has no outbox provider, so a script cannot read the code; run on a terminal, or move it aside"
        warn "$CONF has no outbox provider: the code goes to a real SMS gateway"
    fi

    if [[ ! -e "$USERS_FILE" ]]; then
        write_new_file 0600 "$USERS_FILE" <<EOF
# $USERS_FILE - login name = mobile number in E.164 form.
# $MARKER.
[users]
$DEMO_USER = "$DEMO_MOBILE"
EOF
    elif grep -qE "^[[:space:]]*\"?$DEMO_USER\"?[[:space:]]*=" "$USERS_FILE"; then
        info "$USERS_FILE already lists $DEMO_USER"
    else
        if grep -qE '^[[:space:]]*\[users\][[:space:]]*(#.*)?$' "$USERS_FILE"; then
            sed -i -E "0,/^[[:space:]]*\\[users\\][[:space:]]*(#.*)?\$/s//&\\n$DEMO_USER = \"$DEMO_MOBILE\"/" "$USERS_FILE"
        else
            printf '\n[users]\n%s = "%s"\n' "$DEMO_USER" "$DEMO_MOBILE" >>"$USERS_FILE"
        fi
        manifest_add users-entry "$USERS_FILE"
        info "added $DEMO_USER = \"$DEMO_MOBILE\" to $USERS_FILE"
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
    start_daemon "$CONF" "$SOCK"
}
