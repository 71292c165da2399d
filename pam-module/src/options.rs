//! Module arguments from the pam.d line, e.g.
//! `auth required pam_smsotp.so socket=/run/smsotp/root.sock failmode=secure timeout=20 debug`.
//!
//! Arguments arrive as raw bytes: a socket path need not be UTF-8, and
//! decoding it lossily would point the module at a socket that does not
//! exist, which `failmode=safe` would then wave through.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;

pub const DEFAULT_TIMEOUT_SECS: u64 = 20;
pub const MIN_TIMEOUT_SECS: u64 = 1;
pub const MAX_TIMEOUT_SECS: u64 = 120;

/// `sun_path` holds 108 bytes including the terminating NUL. A longer path
/// could never be connected to, so it is a configuration error rather than
/// an "unavailable" daemon that `failmode=safe` would let through.
const MAX_SOCKET_PATH: usize = 107;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailMode {
    /// An absent daemon fails the login.
    Secure,
    /// An absent daemon (no socket, nobody listening; never a busy, silent
    /// or refusing one) makes the module step aside.
    Safe,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `socket=`; without it, see [`Options::sockets_for`].
    pub socket: Option<PathBuf>,
    pub failmode: FailMode,
    pub timeout: Duration,
    pub debug: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            socket: None,
            failmode: FailMode::Secure,
            timeout: Duration::from_secs(DEFAULT_TIMEOUT_SECS),
            debug: false,
        }
    }
}

impl Options {
    /// The sockets to try, in order, when the module runs with effective
    /// uid `euid`: `socket=` if given; else, for root (sshd, sudo, login),
    /// the root-only socket that no local user can flood, then the public
    /// one in case the root socket does not exist (a daemon older than the
    /// module); else the public one (screen lockers running as the user).
    pub fn sockets_for(&self, euid: u32) -> Vec<PathBuf> {
        match &self.socket {
            Some(explicit) => vec![explicit.clone()],
            None => smsotp_proto::sockets::defaults_for(euid)
                .iter()
                .map(PathBuf::from)
                .collect(),
        }
    }
}

/// The options plus the arguments that were not understood; those are
/// logged and otherwise ignored so a typo in an unrelated word does not lock
/// everybody out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub options: Options,
    pub unknown: Vec<String>,
}

/// A known option with a value the module cannot honour. Values are shown
/// escaped because they end up in syslog.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionError {
    #[error("option {0} needs a value ({0}=...)")]
    MissingValue(&'static str),
    #[error("socket={0:?} is not an absolute path of at most {MAX_SOCKET_PATH} bytes")]
    Socket(String),
    #[error("failmode={0:?} is neither secure nor safe")]
    FailMode(String),
    #[error(
        "timeout={0:?} is not a whole number of seconds in {MIN_TIMEOUT_SECS}..={MAX_TIMEOUT_SECS}"
    )]
    Timeout(String),
    #[error("debug takes no value, got debug={0:?}")]
    DebugValue(String),
}

/// Parses the arguments in order; when an option repeats, the last one wins,
/// as with most PAM modules.
pub fn parse<'a>(args: impl IntoIterator<Item = &'a [u8]>) -> Result<Parsed, OptionError> {
    let mut options = Options::default();
    let mut unknown = Vec::new();
    for arg in args {
        let mut parts = arg.splitn(2, |&b| b == b'=');
        let key = parts.next().unwrap_or(arg);
        let value = parts.next();
        match key {
            b"socket" => {
                options.socket = Some(socket(value.ok_or(OptionError::MissingValue("socket"))?)?)
            }
            b"failmode" => {
                options.failmode = failmode(value.ok_or(OptionError::MissingValue("failmode"))?)?
            }
            b"timeout" => {
                options.timeout = timeout(value.ok_or(OptionError::MissingValue("timeout"))?)?
            }
            b"debug" => match value {
                None => options.debug = true,
                Some(v) => return Err(OptionError::DebugValue(lossy(v))),
            },
            _ => unknown.push(lossy(arg)),
        }
    }
    Ok(Parsed { options, unknown })
}

fn socket(value: &[u8]) -> Result<PathBuf, OptionError> {
    if value.first() != Some(&b'/') || value.len() > MAX_SOCKET_PATH {
        return Err(OptionError::Socket(lossy(value)));
    }
    Ok(PathBuf::from(OsStr::from_bytes(value)))
}

fn failmode(value: &[u8]) -> Result<FailMode, OptionError> {
    match value {
        b"secure" => Ok(FailMode::Secure),
        b"safe" => Ok(FailMode::Safe),
        other => Err(OptionError::FailMode(lossy(other))),
    }
}

fn timeout(value: &[u8]) -> Result<Duration, OptionError> {
    let bad = || OptionError::Timeout(lossy(value));
    // `u64::from_str` would also take "+5"; only plain digits are a number here.
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    let secs: u64 = std::str::from_utf8(value)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(bad)?;
    if (MIN_TIMEOUT_SECS..=MAX_TIMEOUT_SECS).contains(&secs) {
        Ok(Duration::from_secs(secs))
    } else {
        Err(bad())
    }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Parsed, OptionError> {
        parse(args.iter().map(|a| a.as_bytes()))
    }

    #[test]
    fn defaults_match_the_contract() {
        let parsed = run(&[]).unwrap();
        assert_eq!(parsed.options.socket, None);
        assert_eq!(
            parsed.options.sockets_for(0),
            vec![
                PathBuf::from("/run/smsotp/root.sock"),
                PathBuf::from("/run/smsotp/smsotpd.sock")
            ]
        );
        assert_eq!(
            parsed.options.sockets_for(1000),
            vec![PathBuf::from("/run/smsotp/smsotpd.sock")]
        );
        assert_eq!(parsed.options.failmode, FailMode::Secure);
        assert_eq!(parsed.options.timeout, Duration::from_secs(20));
        assert!(!parsed.options.debug);
        assert!(parsed.unknown.is_empty());
    }

    #[test]
    fn every_option_is_read() {
        let parsed = run(&["socket=/tmp/x.sock", "failmode=safe", "timeout=5", "debug"]).unwrap();
        assert_eq!(
            parsed.options,
            Options {
                socket: Some(PathBuf::from("/tmp/x.sock")),
                failmode: FailMode::Safe,
                timeout: Duration::from_secs(5),
                debug: true,
            }
        );
    }

    #[test]
    fn an_explicit_socket_wins_for_root_too() {
        let parsed = run(&["socket=/run/smsotp/smsotpd.sock"]).unwrap();
        assert_eq!(
            parsed.options.sockets_for(0),
            vec![PathBuf::from("/run/smsotp/smsotpd.sock")]
        );
    }

    #[test]
    fn the_last_repeat_wins() {
        let parsed = run(&["failmode=safe", "failmode=secure"]).unwrap();
        assert_eq!(parsed.options.failmode, FailMode::Secure);
    }

    #[test]
    fn unknown_options_are_collected_not_fatal() {
        let parsed = run(&["use_first_pass", "nonsense=1", "debug"]).unwrap();
        assert_eq!(parsed.unknown, vec!["use_first_pass", "nonsense=1"]);
        assert!(parsed.options.debug);
    }

    #[test]
    fn timeout_bounds() {
        assert_eq!(
            run(&["timeout=1"]).unwrap().options.timeout,
            Duration::from_secs(1)
        );
        assert_eq!(
            run(&["timeout=120"]).unwrap().options.timeout,
            Duration::from_secs(120)
        );
        for bad in [
            "timeout=0",
            "timeout=121",
            "timeout=abc",
            "timeout=",
            "timeout=+5",
            "timeout=-1",
            "timeout=1.5",
            "timeout=99999999999999999999999",
        ] {
            assert!(matches!(run(&[bad]), Err(OptionError::Timeout(_))), "{bad}");
        }
    }

    #[test]
    fn failmode_values() {
        assert_eq!(
            run(&["failmode=secure"]).unwrap().options.failmode,
            FailMode::Secure
        );
        for bad in ["failmode=", "failmode=SAFE", "failmode=open"] {
            assert!(
                matches!(run(&[bad]), Err(OptionError::FailMode(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn socket_must_be_absolute_and_fit_sun_path() {
        assert!(matches!(run(&["socket="]), Err(OptionError::Socket(_))));
        assert!(matches!(
            run(&["socket=run/x.sock"]),
            Err(OptionError::Socket(_))
        ));
        let long = format!("socket=/{}", "a".repeat(107));
        assert!(matches!(run(&[&long]), Err(OptionError::Socket(_))));
        let fits = format!("socket=/{}", "a".repeat(106));
        assert!(run(&[&fits]).is_ok());
    }

    #[test]
    fn non_utf8_socket_paths_are_kept_byte_exact() {
        let arg: &[u8] = b"socket=/run/\xffx.sock";
        let parsed = parse([arg]).unwrap();
        assert_eq!(
            parsed.options.sockets_for(0)[0].as_os_str().as_bytes(),
            b"/run/\xffx.sock"
        );
    }

    #[test]
    fn known_options_without_values_are_errors() {
        assert_eq!(run(&["socket"]), Err(OptionError::MissingValue("socket")));
        assert_eq!(
            run(&["failmode"]),
            Err(OptionError::MissingValue("failmode"))
        );
        assert_eq!(run(&["timeout"]), Err(OptionError::MissingValue("timeout")));
        assert!(matches!(
            run(&["debug=yes"]),
            Err(OptionError::DebugValue(_))
        ));
    }

    #[test]
    fn error_text_escapes_values_for_the_log() {
        let err = run(&["failmode=sa\nfe"]).unwrap_err();
        assert!(!err.to_string().contains('\n'), "{err}");
    }
}
