//! Logging through libpam's `pam_syslog`, which prefixes the service and
//! module name and uses the application's syslog connection. The module
//! never calls `openlog`: that would change the ident and facility of the
//! host process (sshd, sudo) for the rest of its life.

use pam::module::PamHandle;
use std::ffi::{c_char, c_int, CString};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Alert,
    Warning,
    Notice,
    Info,
    Debug,
}

impl Level {
    fn priority(self) -> c_int {
        let level = match self {
            Level::Alert => libc::LOG_ALERT,
            Level::Warning => libc::LOG_WARNING,
            Level::Notice => libc::LOG_NOTICE,
            Level::Info => libc::LOG_INFO,
            Level::Debug => libc::LOG_DEBUG,
        };
        libc::LOG_AUTHPRIV | level
    }
}

/// Where the login flow writes its log lines; syslog in production, a
/// vector in tests (which is how the tests prove no code is ever logged).
pub trait Log {
    fn log(&mut self, level: Level, msg: &str);
}

#[link(name = "pam")]
unsafe extern "C" {
    // Variadic: always called with a constant "%s" format so that nothing
    // from a user or the daemon is ever interpreted as a format string.
    fn pam_syslog(pamh: *const PamHandle, priority: c_int, fmt: *const c_char, ...);
}

pub struct Syslog<'a> {
    pamh: &'a PamHandle,
    debug: bool,
}

impl<'a> Syslog<'a> {
    pub fn new(pamh: &'a PamHandle, debug: bool) -> Self {
        Syslog { pamh, debug }
    }
}

impl Log for Syslog<'_> {
    fn log(&mut self, level: Level, msg: &str) {
        if level == Level::Debug && !self.debug {
            return;
        }
        let line = c_line(msg);
        // SAFETY: `pamh` is the live handle libpam passed to this hook, the
        // format is a NUL-terminated constant with one `%s`, and `line` is a
        // NUL-terminated string that outlives the call.
        unsafe {
            pam_syslog(self.pamh, level.priority(), c"%s".as_ptr(), line.as_ptr());
        }
    }
}

/// An interior NUL would make `CString::new` fail and the line vanish;
/// newlines would let a value forge a second log line.
fn c_line(msg: &str) -> CString {
    let cleaned: String = msg
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    CString::new(cleaned).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_cannot_carry_nul_or_newlines() {
        assert_eq!(c_line("a\0b\nc").to_bytes(), b"a?b?c");
    }

    #[test]
    fn priorities_use_authpriv() {
        assert_eq!(
            Level::Alert.priority(),
            libc::LOG_AUTHPRIV | libc::LOG_ALERT
        );
        assert_eq!(Level::Info.priority() & libc::LOG_PRIMASK, libc::LOG_INFO);
    }
}
