//! What each failure of a login means to PAM: a daemon error, a lost link,
//! no challenge at all (the only place `failmode` is read), a protocol
//! error. One home, so the contract's failure rows cannot drift apart.

use super::*;

impl<C: Conversation, L: Log> Login<'_, C, L> {
    /// A failure message, or the generic one when the current challenge
    /// asks not to say why.
    pub(super) fn fail_msg(&mut self, specific: &str) {
        if self.show_reasons {
            self.conv.error(specific);
        } else {
            self.conv.error(self.t.auth_failed);
        }
    }

    /// The link failed after the daemon had answered begin.
    pub(super) fn link_lost(&mut self, e: ClientError) -> End {
        self.conv.error(self.t.unavailable);
        End::new(
            PamResultCode::PAM_AUTHINFO_UNAVAIL,
            "connection-lost",
            Level::Warning,
        )
        .because(e)
    }

    /// `Busy` lands here too and is never "unavailable": a flood of
    /// connections must not turn failmode=safe into fail-open.
    pub(super) fn daemon_error(&mut self, kind: ErrorKind, message: &str) -> End {
        let shown = messages::daemon_text(message);
        if !shown.is_empty() {
            self.conv.error(&shown);
        }
        let end = if kind == ErrorKind::PermissionDenied {
            End::new(
                PamResultCode::PAM_AUTH_ERR,
                "permission-denied",
                Level::Warning,
            )
        } else {
            End::new(
                PamResultCode::PAM_AUTHINFO_UNAVAIL,
                "daemon-error",
                Level::Warning,
            )
        };
        end.because(format!("{kind:?}: {shown}"))
    }

    /// Connect, hello or begin failed, so no code was sent. Only a daemon
    /// that is not there at all (no socket, nobody listening) is
    /// "unavailable" for `failmode`; one that is busy, silent, hangs up, or
    /// is not root is present, can be made to look that way by any local
    /// user, and denies in every failmode.
    pub(super) fn no_challenge(&mut self, failmode: FailMode, step: &str, e: ClientError) -> End {
        if !e.daemon_absent() {
            return self.daemon_unusable(step, e);
        }
        match failmode {
            FailMode::Safe => {
                self.log.log(
                    Level::Alert,
                    &format!(
                        "smsotp daemon unreachable, failmode=safe lets the login through ({} {step}: {e})",
                        self.who
                    ),
                );
                End::new(
                    PamResultCode::PAM_IGNORE,
                    "unavailable-ignored",
                    Level::Notice,
                )
                .because(format!("{step}: {e}"))
            }
            FailMode::Secure => {
                self.conv.error(self.t.unavailable);
                End::new(
                    PamResultCode::PAM_AUTHINFO_UNAVAIL,
                    "unavailable",
                    Level::Warning,
                )
                .because(format!("{step}: {e}"))
            }
        }
    }

    /// A daemon is there but gave no challenge: always PAM_AUTHINFO_UNAVAIL.
    pub(super) fn daemon_unusable(&mut self, step: &str, e: ClientError) -> End {
        let (shown, result, level) = match &e {
            ClientError::Refused(message) => (
                messages::daemon_text(message),
                "daemon-refused",
                Level::Warning,
            ),
            ClientError::Backlog { .. } => (self.t.busy.to_string(), "busy", Level::Warning),
            // Whoever listens could answer "verified" to anything: the
            // administrator must hear of it.
            ClientError::NotRoot { .. } => (
                self.t.unavailable.to_string(),
                "daemon-not-root",
                Level::Alert,
            ),
            _ => (String::new(), "daemon-unresponsive", Level::Warning),
        };
        self.conv.error(if shown.is_empty() {
            self.t.unavailable
        } else {
            &shown
        });
        End::new(PamResultCode::PAM_AUTHINFO_UNAVAIL, result, level).because(format!("{step}: {e}"))
    }

    pub(super) fn protocol_error(&mut self, what: &str) -> End {
        self.conv.error(self.t.unavailable);
        End::new(
            PamResultCode::PAM_AUTHINFO_UNAVAIL,
            "protocol-error",
            Level::Warning,
        )
        .because(what)
    }
}
