//! The protocol's bounds on what a request may carry, checked by both
//! ends: the client before it sends, the daemon before it acts.

use crate::limits;
use crate::message::{BeginRequest, Request};
use crate::secret::Secret;

/// A field of a request broke a protocol bound.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct ValidationError {
    pub field: &'static str,
    pub problem: &'static str,
}

fn check_text(
    field: &'static str,
    value: &str,
    max: usize,
    allow_empty: bool,
) -> Result<(), ValidationError> {
    if value.len() > max {
        return Err(ValidationError {
            field,
            problem: "too long",
        });
    }
    if !allow_empty && value.is_empty() {
        return Err(ValidationError {
            field,
            problem: "empty",
        });
    }
    if value.chars().any(char::is_control) {
        return Err(ValidationError {
            field,
            problem: "contains control characters",
        });
    }
    Ok(())
}

/// Login names: bounded, printable, and nothing a path or an option
/// parser could misread.
pub fn check_user(user: &str) -> Result<(), ValidationError> {
    check_text("user", user, limits::MAX_USER, false)?;
    if user.contains('/') || user.starts_with('-') {
        return Err(ValidationError {
            field: "user",
            problem: "not a valid login name",
        });
    }
    Ok(())
}

/// What a user typed at a code prompt: bounded, never truncated.
fn check_code(code: &Secret) -> Result<(), ValidationError> {
    if code.len() > limits::MAX_CODE {
        return Err(ValidationError {
            field: "code",
            problem: "too long",
        });
    }
    Ok(())
}

impl BeginRequest {
    pub fn validate(&self) -> Result<(), ValidationError> {
        check_user(&self.user)?;
        check_text("service", &self.service, limits::MAX_SERVICE, false)?;
        if let Some(rhost) = &self.rhost {
            check_text("rhost", rhost, limits::MAX_RHOST, true)?;
        }
        if let Some(tty) = &self.tty {
            check_text("tty", tty, limits::MAX_TTY, true)?;
        }
        if let Some(command) = &self.command {
            check_text("command", command, limits::MAX_COMMAND, true)?;
        }
        Ok(())
    }
}

impl Request {
    /// Checks every bound of the protocol. Both sides call it: the client
    /// before sending, the daemon on receipt.
    pub fn validate(&self) -> Result<(), ValidationError> {
        match self {
            Request::Hello { client, .. } => check_text("client", client, 64, true),
            Request::Begin(begin) => begin.validate(),
            Request::Verify { code } => check_code(code),
            Request::Resend | Request::Call | Request::StoreCheck => Ok(()),
            Request::ImportStore { path } => {
                check_text("path", path, limits::MAX_PATH, false)?;
                if !path.starts_with('/') {
                    return Err(ValidationError {
                        field: "path",
                        problem: "not an absolute path",
                    });
                }
                Ok(())
            }
            Request::Enroll { mobile } => check_text("mobile", mobile, limits::MAX_MOBILE, false),
            Request::SetMobile { user, mobile } => {
                check_user(user)?;
                check_text("mobile", mobile, limits::MAX_MOBILE, false)
            }
            Request::GenerateBackupCodes { user, code } | Request::SetOptOut { user, code, .. } => {
                check_user(user)?;
                code.as_ref().map_or(Ok(()), check_code)
            }
            Request::Status { user }
            | Request::RemoveUser { user }
            | Request::Unlock { user }
            | Request::TestSms { user } => check_user(user),
        }
    }
}
