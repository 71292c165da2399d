//! Validated configuration. Every value here is in range; the daemon can
//! use it without further checks.

use crate::template::Template;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

pub const DEFAULT_CONFIG: &str = "/etc/smsotp/smsotpd.toml";
pub const DEFAULT_SOCKET: &str = "/run/smsotp/smsotpd.sock";
pub const DEFAULT_USERS_FILE: &str = "/etc/smsotp/users.toml";
pub const DEFAULT_OUTBOX: &str = "/var/lib/smsotp/outbox.jsonl";
pub const DEFAULT_TEMPLATE: &str =
    "Your login code for {{host}} is {{code}}. It expires in {{expiry_minutes}} minutes.";

#[derive(Debug, Clone)]
pub struct DaemonConfig {
    pub socket: PathBuf,
    pub users_file: PathBuf,
    pub max_connections: usize,
    /// Non-root peers may begin a challenge for their own login only.
    pub allow_user_self: bool,
    /// `{{host}}` in messages; `None` means the system hostname.
    pub hostname: Option<String>,
    pub log_level: LogLevel,
    pub otp: OtpPolicy,
    pub message: Template,
    pub providers: Vec<ProviderConfig>,
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

#[derive(Debug, Clone)]
pub enum ProviderConfig {
    Outbox(OutboxConfig),
    Http(HttpConfig),
}

impl ProviderConfig {
    pub fn name(&self) -> &str {
        match self {
            ProviderConfig::Outbox(c) => &c.name,
            ProviderConfig::Http(c) => &c.name,
        }
    }
}

#[derive(Debug, Clone)]
pub struct OutboxConfig {
    pub name: String,
    pub path: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpMethod {
    Get,
    Post,
    Put,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentType {
    Json,
    Form,
}

#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub name: String,
    /// May hold `{{mobile}}`/`{{body}}` (url-encoded when rendered).
    pub url: Template,
    pub method: HttpMethod,
    pub content_type: ContentType,
    /// `None`: no body (typical with GET and a templated URL).
    pub payload: Option<Template>,
    pub headers: Vec<Header>,
    pub success_codes: Vec<u16>,
    pub timeout: Duration,
}

/// A static HTTP header. Values often carry credentials, so `Debug`
/// shows only the name.
#[derive(Clone)]
pub struct Header {
    pub name: String,
    pub value: String,
}

impl fmt::Debug for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Header({}: ***)", self.name)
    }
}
