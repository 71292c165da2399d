# shellcheck shell=bash
# scripts/demo/state.sh - what the demo created and what it started, sourced
# by scripts/demo.sh: the manifest that --uninstall reads, the helpers that
# create files while recording them, and the tests on smsotpd's process and
# socket that installing and uninstalling both make.

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

