//! Everything that reads from libpam (besides logging): the items that
//! describe the login, and the conversation.
//!
//! Items are fitted to the protocol's bounds here rather than failing the
//! login, except the user name: a shortened name would be somebody else.

use crate::flow::{ConvError, Conversation};
use crate::sudo_cmd;
use pam::constants::{PAM_ERROR_MSG, PAM_PROMPT_ECHO_OFF, PAM_PROMPT_ECHO_ON, PAM_TEXT_INFO};
use pam::conv::Conv;
use pam::items::{RHost, Service, Tty};
use pam::module::PamHandle;
use pam::secret::SecretBytes;
use smsotp_proto::limits::{MAX_RHOST, MAX_SERVICE, MAX_TTY};
use smsotp_proto::{BeginRequest, Secret, ValidationError};
use std::ffi::{c_char, CStr};

#[link(name = "pam")]
unsafe extern "C" {
    fn pam_getenv(pamh: *mut PamHandle, name: *const c_char) -> *const c_char;
}

/// Why the login could not even be described to the daemon.
#[derive(Debug, thiserror::Error)]
pub enum GlueError {
    #[error("pam_get_user failed: {0:?}")]
    User(pam::constants::PamResultCode),
    #[error("user name is not usable: {0}")]
    BadUser(ValidationError),
}

/// Reads PAM_USER (prompting if the application has not set it),
/// PAM_SERVICE, PAM_RHOST, PAM_TTY and the command of a sudo step-up. The
/// process environment is never consulted: at this point it belongs to the
/// user who is trying to authenticate.
pub fn begin_request(pamh: &mut PamHandle) -> Result<BeginRequest, GlueError> {
    let user = pamh.get_user(None).map_err(GlueError::User)?;
    let command = sudo_command(pamh);
    let service = pamh
        .get_item::<Service>()
        .ok()
        .flatten()
        .map(|s| s.to_string_lossy().into_owned());
    let rhost = pamh
        .get_item::<RHost>()
        .ok()
        .flatten()
        .map(|s| s.to_string_lossy().into_owned());
    let tty = pamh
        .get_item::<Tty>()
        .ok()
        .flatten()
        .map(|s| s.to_string_lossy().into_owned());
    let begin = fit(user, service, rhost, tty, command);
    begin.validate().map_err(GlueError::BadUser)?;
    Ok(begin)
}

/// Inside sudo, the command parsed from sudo's own argv: the process's
/// argv is what sudo acts on, while the PAM environment at this point holds
/// only what earlier modules or the application put there. Elsewhere (or
/// when sudo's argv cannot be parsed), `SUDO_COMMAND` from the PAM
/// environment if an application set it.
fn sudo_command(pamh: &mut PamHandle) -> Option<String> {
    if let Some(command) = sudo_cmd::from_proc() {
        return Some(command);
    }
    // SAFETY: `pamh` is the live handle of this hook and the name is a
    // NUL-terminated constant. libpam returns NULL or a pointer into its own
    // environment list, valid until the next pam_putenv; it is copied at once.
    let value = unsafe { pam_getenv(pamh, c"SUDO_COMMAND".as_ptr()) };
    if value.is_null() {
        return None;
    }
    // SAFETY: non-NULL results of pam_getenv are NUL-terminated strings.
    let value = unsafe { CStr::from_ptr(value) };
    Some(value.to_string_lossy().into_owned())
}

/// Builds a request whose every field but `user` is within the protocol
/// bounds, so a later `validate` can only fail on the user name.
pub fn fit(
    user: String,
    service: Option<String>,
    rhost: Option<String>,
    tty: Option<String>,
    command: Option<String>,
) -> BeginRequest {
    let service = service
        .map(|s| shorten(&printable(&s), MAX_SERVICE).to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_string());
    BeginRequest {
        user,
        service,
        rhost: rhost.filter(|h| fits_exactly(h, MAX_RHOST)),
        tty: tty.filter(|t| fits_exactly(t, MAX_TTY)),
        command: command
            .map(|c| sudo_cmd::bound(&c))
            .filter(|c| !c.is_empty()),
    }
}

/// The remote host and tty may feed the daemon's policy (trusted networks),
/// and a name can come from attacker-controlled reverse DNS: a shortened
/// name could match a rule the real one does not, so out-of-bound values
/// are dropped whole.
fn fits_exactly(value: &str, max: usize) -> bool {
    !value.is_empty() && value.len() <= max && !value.chars().any(char::is_control)
}

fn printable(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The longest prefix of at most `max` bytes that ends on a char boundary.
fn shorten(value: &str, max: usize) -> &str {
    let end = (0..=max.min(value.len()))
        .rev()
        .find(|&i| value.is_char_boundary(i))
        .unwrap_or(0);
    value.get(..end).unwrap_or("")
}

/// The conversation as the login flow sees it. With PAM_SILENT the
/// application asked for no messages, so errors and notices are dropped;
/// prompts still go out because the login cannot proceed without them.
pub struct PamConversation<'a> {
    conv: Conv<'a>,
    silent: bool,
}

impl<'a> PamConversation<'a> {
    pub fn new(conv: Conv<'a>, silent: bool) -> Self {
        PamConversation { conv, silent }
    }
}

impl Conversation for PamConversation<'_> {
    fn prompt_secret(&mut self, msg: &str) -> Result<Option<Secret>, ConvError> {
        match self.conv.send(PAM_PROMPT_ECHO_OFF, msg) {
            Ok(reply) => Ok(reply.map(into_secret)),
            Err(code) => Err(ConvError(format!("{code:?}"))),
        }
    }

    fn prompt_echo(&mut self, msg: &str) -> Result<Option<Secret>, ConvError> {
        match self.conv.send(PAM_PROMPT_ECHO_ON, msg) {
            Ok(reply) => Ok(reply.map(into_secret)),
            Err(code) => Err(ConvError(format!("{code:?}"))),
        }
    }

    fn error(&mut self, msg: &str) {
        if !self.silent {
            // A client that cannot show a message can still answer the
            // next prompt; failing the login over it would help nobody.
            let _ = self.conv.send(PAM_ERROR_MSG, msg);
        }
    }

    fn info(&mut self, msg: &str) {
        if !self.silent {
            let _ = self.conv.send(PAM_TEXT_INFO, msg);
        }
    }
}

/// Moves the reply into a `Secret` without leaving an unzeroized copy: the
/// lossy path (non-UTF-8 input) yields an owned `String` that is moved, not
/// copied.
fn into_secret(bytes: SecretBytes) -> Secret {
    match std::str::from_utf8(bytes.as_bytes()) {
        Ok(text) => Secret::new(text),
        Err(_) => Secret::new(String::from_utf8_lossy(bytes.as_bytes()).into_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smsotp_proto::limits::MAX_COMMAND;

    fn some(s: &str) -> Option<String> {
        Some(s.to_string())
    }

    #[test]
    fn plain_values_pass_through() {
        let b = fit(
            "alice".into(),
            some("sshd"),
            some("192.0.2.1"),
            some("ssh"),
            some("/usr/bin/id"),
        );
        assert_eq!(b.service, "sshd");
        assert_eq!(b.rhost.as_deref(), Some("192.0.2.1"));
        assert_eq!(b.tty.as_deref(), Some("ssh"));
        assert_eq!(b.command.as_deref(), Some("/usr/bin/id"));
        assert!(b.validate().is_ok());
    }

    #[test]
    fn overlong_or_odd_hosts_and_ttys_are_dropped_not_cut() {
        let b = fit(
            "alice".into(),
            some("sshd"),
            some(&"h".repeat(MAX_RHOST + 1)),
            some("pts\n1"),
            None,
        );
        assert_eq!(b.rhost, None);
        assert_eq!(b.tty, None);
        assert!(b.validate().is_ok());
        let b = fit("alice".into(), some("sshd"), some(""), some(""), some(""));
        assert_eq!((b.rhost, b.tty, b.command), (None, None, None));
    }

    #[test]
    fn service_is_fitted_and_never_empty() {
        let b = fit("alice".into(), None, None, None, None);
        assert_eq!(b.service, "unknown");
        let b = fit(
            "alice".into(),
            some(&"é".repeat(MAX_SERVICE)),
            None,
            None,
            None,
        );
        assert!(b.service.len() <= MAX_SERVICE);
        assert!(b.validate().is_ok());
    }

    #[test]
    fn long_commands_are_cut_and_marked() {
        let long = format!("/bin/echo {}", "ü".repeat(MAX_COMMAND));
        let b = fit("alice".into(), some("sudo"), None, None, Some(long));
        let command = b.command.clone().unwrap();
        assert_eq!(command.chars().count(), sudo_cmd::MAX_SHOWN);
        assert!(command.ends_with("..."));
        assert!(b.validate().is_ok());
        let b = fit(
            "alice".into(),
            some("sudo"),
            None,
            None,
            some("echo \x1b[31m"),
        );
        assert_eq!(b.command.as_deref(), Some("echo ?[31m"));
    }

    #[test]
    fn bad_user_names_are_not_repaired() {
        for user in ["", "-rf", "../x", "a\nb"] {
            let b = fit(user.into(), some("sshd"), None, None, None);
            assert_eq!(b.validate().unwrap_err().field, "user", "{user:?}");
        }
        let b = fit("u".repeat(300), some("sshd"), None, None, None);
        assert_eq!(b.validate().unwrap_err().field, "user");
    }
}
