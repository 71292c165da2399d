# shellcheck shell=bash
# scripts/demo/uninstall.sh - `scripts/demo.sh --uninstall`: undo what the
# manifest (scripts/demo/state.sh) says the demo did. Sourced by
# scripts/demo.sh.

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

