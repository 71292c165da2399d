//! Validated configuration. Every value here is in range; the daemon can
//! use it without further checks.

use crate::lang::LangTag;
use crate::policy::{BackupCodes, Lockout, Policy, Resend, SendBudget, StoreConfig};
use crate::provider::ProviderConfig;
use crate::template::Template;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

pub const DEFAULT_CONFIG: &str = "/etc/smsotp/smsotpd.toml";
/// The sockets are the protocol's meeting points; proto owns their paths.
pub use smsotp_proto::sockets::{DEFAULT_ROOT_SOCKET, DEFAULT_SOCKET};
pub const DEFAULT_USERS_FILE: &str = "/etc/smsotp/users.toml";
pub const DEFAULT_OUTBOX: &str = "/var/lib/smsotp/outbox.jsonl";
pub const DEFAULT_TEMPLATE: &str =
    "Your login code for {{host}} is {{code}}. It expires in {{expiry_minutes}} minutes.";

#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// The public socket (0666): everyone, authorised per request.
    pub socket: PathBuf,
    /// The root-only socket (0600): PAM inside sshd/sudo and root's
    /// smsotpctl. Nobody else can connect, so nobody else can fill it.
    pub root_socket: PathBuf,
    pub users_file: PathBuf,
    /// Concurrent connections per socket.
    pub max_connections: usize,
    /// Concurrent connections one non-root uid may hold on the public
    /// socket.
    pub max_connections_per_user: usize,
    /// An admin connection (no login on it) is closed this long after it
    /// was accepted, however often it sends requests.
    pub admin_lifetime: Duration,
    /// Non-root peers may begin a challenge for their own login only.
    pub allow_user_self: bool,
    /// `{{host}}` in messages; `None` means the system hostname.
    pub hostname: Option<String>,
    pub log_level: LogLevel,
    pub otp: OtpPolicy,
    /// The default template: `message.template`, in `default_lang`.
    pub message: Template,
    /// `message.default_lang`: the language of users who have none.
    pub default_lang: LangTag,
    /// `[message.lang.TAG] template`, by canonical tag; see
    /// [`DaemonConfig::template_for`] for the fallback chain.
    pub lang_templates: BTreeMap<LangTag, Template>,
    /// `message.max_segments`: the most SMS segments any template may take
    /// at its longest (checked by the daemon, which knows the hostname).
    pub max_segments: u8,
    /// Digits of the number left visible on the prompt and in logs (0-4).
    pub mask_visible_digits: u8,
    /// Append the WICG origin-bound line (`@host #code`) so phones can
    /// offer the code for autofill only on this host.
    pub origin_bound: bool,
    pub policy: Policy,
    pub lockout: Lockout,
    pub resend: Resend,
    pub send_budget: SendBudget,
    pub backup_codes: BackupCodes,
    pub store: StoreConfig,
    pub metrics: crate::metrics::MetricsConfig,
    pub providers: Vec<ProviderConfig>,
    /// `[directory]`: numbers from LDAP; `None` when not configured.
    pub directory: Option<crate::directory::DirectoryConfig>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeKind {
    Numeric,
    /// Letters and digits without look-alikes (no 0/O, 1/I/L).
    Alphanumeric,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OtpPolicy {
    pub length: u8,
    pub kind: CodeKind,
    pub expiry: Duration,
    pub max_attempts: u32,
    pub max_resends: u32,
}

impl Default for OtpPolicy {
    fn default() -> Self {
        OtpPolicy {
            length: 6,
            kind: CodeKind::Numeric,
            expiry: Duration::from_secs(300),
            max_attempts: 3,
            max_resends: 3,
        }
    }
}
