//! The enrolment prompt of a login: the daemon has no number for the user
//! and its policy lets them register one at login.

use super::*;

impl<C: Conversation, L: Log> Login<'_, C, L> {
    /// The daemon has no number for the user and its policy lets them
    /// enrol one: ask for it (ECHO_ON) until the daemon opens a challenge,
    /// at most [`MAX_MOBILE_TRIES`] numbers. The daemon answered begin, so
    /// it is up: a link failure here is unavailable in any failmode (a
    /// slow send must never turn `safe` into fail-open).
    pub(super) fn enroll<D: DaemonLink>(&mut self, link: &mut D) -> Result<ChallengeInfo, End> {
        for attempt in 1..=MAX_MOBILE_TRIES {
            if self.prompts >= MAX_PROMPTS {
                return Err(prompt_limit());
            }
            self.prompts = self.prompts.saturating_add(1);
            let reply = match self.conv.prompt_echo(self.t.ask_mobile) {
                Ok(Some(reply)) => reply,
                Ok(None) => return Err(conv_failed("no reply")),
                Err(e) => return Err(conv_failed(e)),
            };
            let typed = reply.expose().trim();
            if typed.is_empty() {
                self.conv.error(self.t.no_mobile_given);
                return Err(End::new(
                    PamResultCode::PAM_AUTH_ERR,
                    "no-mobile-given",
                    Level::Notice,
                ));
            }
            // The protocol's own bounds (length, control characters) are
            // checked here: a request the client would refuse to send must
            // not look like a lost connection.
            let request = Request::Enroll {
                mobile: typed.to_string(),
            };
            if let Err(e) = request.validate() {
                wipe(request);
                self.debug(&format!(
                    "enrolment prompt {attempt}: number refused locally ({})",
                    e.problem
                ));
                self.conv
                    .error(&messages::invalid_mobile(self.t, e.problem));
                continue;
            }
            self.debug(&format!("enrolment prompt {attempt}: sending the number"));
            let answer = link.call(&request);
            wipe(request);
            let answer = match answer {
                Ok(answer) => answer,
                Err(e) => return Err(self.link_lost(e)),
            };
            match self.on_answer(Asked::Enroll, answer) {
                Next::Challenge(info) => return Ok(info),
                Next::InvalidMobile(reason) => {
                    self.debug(&format!("enrolment prompt {attempt}: number refused"));
                    self.conv.error(&messages::invalid_mobile(self.t, &reason));
                }
                Next::Done(end) => return Err(end),
                Next::Prompt | Next::AskMobile => {
                    return Err(self.protocol_error("prompt answer to enroll"))
                }
            }
        }
        Err(End::new(
            PamResultCode::PAM_AUTH_ERR,
            "invalid-mobile",
            Level::Notice,
        ))
    }
}
