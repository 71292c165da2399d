//! The file format exactly as written, before any checking. Unknown keys
//! are refused here, so a typo (`lenght = 8`) is an error, not a silent
//! default. Integers are read as i64 so a negative or huge value gets our
//! own range message instead of a type error.

use crate::policy::{
    RawBackupCodes, RawLockout, RawResend, RawSendBudget, RawServicePolicy, RawStore,
};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub socket: Option<PathBuf>,
    pub root_socket: Option<PathBuf>,
    pub users_file: Option<PathBuf>,
    pub max_connections: Option<i64>,
    pub max_connections_per_user: Option<i64>,
    pub admin_lifetime_seconds: Option<i64>,
    pub allow_user_self: Option<bool>,
    pub hostname: Option<String>,
    pub log_level: Option<String>,
    #[serde(default)]
    pub otp: RawOtp,
    #[serde(default)]
    pub message: RawMessage,
    #[serde(default)]
    pub policy: RawServicePolicy,
    #[serde(default, rename = "service")]
    pub services: BTreeMap<String, RawServicePolicy>,
    #[serde(default)]
    pub lockout: RawLockout,
    #[serde(default)]
    pub resend: RawResend,
    #[serde(default)]
    pub send_budget: RawSendBudget,
    #[serde(default)]
    pub backup_codes: RawBackupCodes,
    #[serde(default)]
    pub store: RawStore,
    #[serde(default)]
    pub metrics: crate::metrics::RawMetrics,
    #[serde(default, rename = "provider")]
    pub providers: Vec<crate::provider::RawProvider>,
    pub directory: Option<crate::directory::RawDirectory>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOtp {
    pub length: Option<i64>,
    pub numeric: Option<bool>,
    pub expiry_seconds: Option<i64>,
    pub max_attempts: Option<i64>,
    pub max_resends: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMessage {
    pub template: Option<String>,
    pub mask_visible_digits: Option<i64>,
    pub origin_bound: Option<bool>,
    /// The language of `template`, and of users without one.
    pub default_lang: Option<String>,
    /// Most SMS segments any template may take at its longest.
    pub max_segments: Option<i64>,
    /// `[message.lang.de] template = "..."`: one table per language.
    #[serde(default)]
    pub lang: BTreeMap<String, RawLangMessage>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLangMessage {
    pub template: Option<String>,
}

/// `users.toml`: `[users]` then `login = "+E164"` or
/// `login = { mobile = "+E164", lang = "de" }`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUsers {
    #[serde(default)]
    /// A TOML value, checked in `users.rs`: an untagged enum would turn
    /// every mistake into "did not match any variant".
    pub users: BTreeMap<String, toml::Value>,
}
