# shellcheck shell=bash
# scripts/demo/demonstrate.sh - the login through the demo's PAM service,
# after scripts/demo/install.sh: interactive on a terminal, scripted
# otherwise (the right code accepted, a wrong one refused); then what the
# demo set up. Sourced by scripts/demo.sh.

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


# Step 6 of the demo, after do_install (scripts/demo/install.sh, which set
# SECDIR, SOCK, USERS_FILE and OUTBOX): a login, then what the demo set up.
do_demonstrate() { # INTERACTIVE
    local interactive="$1" rc=0
    if [[ "$interactive" == 1 ]]; then
        demo_interactive "$OUTBOX"
    else
        demo_scripted "$OUTBOX" || rc=$?
    fi

    say "What the demo set up"
    info "PAM module     $SECDIR/pam_smsotp.so"
    info "daemon, CLI    $SBIN/smsotpd, $SBIN/smsotpctl"
    info "config         $CONF, $USERS_FILE"
    info "PAM service    $PAM_FILE  (user $DEMO_USER, password $DEMO_PASSWORD)"
    info "socket         $SOCK"
    [[ -n "$OUTBOX" ]] && info "outbox (SMS)   $OUTBOX"
    if [[ -f "$PID_FILE" ]] && is_smsotpd "$(cat "$PID_FILE")"; then
        info "daemon         pid $(cat "$PID_FILE"), log $LOG_FILE"
    fi
    info "try again      pamtester $PAM_SERVICE $DEMO_USER authenticate"
    info "clean up       bash scripts/demo.sh --uninstall   (as root)"
    if ((rc != 0)); then
        die "the demonstration FAILED (see the warnings above)"
    fi
}
