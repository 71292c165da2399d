//! Raw -> validated. Each check names its key path; `Invalid::locate` adds
//! the file and line.

use crate::error::Invalid;
use crate::policy;
use crate::provider::{OutboxConfig, ProviderConfig};
use crate::raw::{RawConfig, RawOtp};
use crate::types::*;
use std::path::PathBuf;
use std::time::Duration;

pub(crate) fn in_range(
    key: &str,
    value: Option<i64>,
    default: i64,
    min: i64,
    max: i64,
) -> Result<i64, Invalid> {
    let v = value.unwrap_or(default);
    if v < min || v > max {
        return Err(Invalid::new(
            key,
            format!("must be between {min} and {max}, not {v}"),
        ));
    }
    Ok(v)
}

pub(crate) fn absolute(
    key: &str,
    path: Option<PathBuf>,
    default: &str,
) -> Result<PathBuf, Invalid> {
    let p = path.unwrap_or_else(|| PathBuf::from(default));
    if !p.is_absolute() {
        return Err(Invalid::new(
            key,
            format!("must be an absolute path, not {:?}", p),
        ));
    }
    Ok(p)
}

pub(crate) fn config(raw: RawConfig) -> Result<DaemonConfig, Invalid> {
    let hostname = match raw.hostname {
        Some(h) if h.is_empty() || h.len() > 253 || h.chars().any(|c| c.is_control()) => {
            return Err(Invalid::new(
                "hostname",
                "must be 1 to 253 printable characters",
            ));
        }
        h => h,
    };
    let log_level = match raw.log_level.as_deref().unwrap_or("info") {
        "error" => LogLevel::Error,
        "warn" => LogLevel::Warn,
        "info" => LogLevel::Info,
        "debug" => LogLevel::Debug,
        "trace" => LogLevel::Trace,
        other => {
            return Err(Invalid::new(
                "log_level",
                format!("must be error, warn, info, debug or trace, not {other:?}"),
            ))
        }
    };
    let message_text = raw.message.template.as_deref().unwrap_or(DEFAULT_TEMPLATE);
    let message = crate::lang::message_template("message.template", message_text)?;
    let languages = crate::lang::languages(&raw.message)?;
    let mut providers = Vec::with_capacity(raw.providers.len().max(1));
    for (i, p) in raw.providers.into_iter().enumerate() {
        providers.push(crate::provider::validate(i, p)?);
    }
    if providers.is_empty() {
        providers.push(ProviderConfig::Outbox(OutboxConfig {
            name: "outbox".into(),
            path: PathBuf::from(DEFAULT_OUTBOX),
        }));
    }
    let mut names: Vec<&str> = providers.iter().map(|p| p.name()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(Invalid::new(
            "provider",
            format!(
                "two providers are named {:?}; give each a distinct `name`",
                w[0]
            ),
        ));
    }
    let socket = absolute("socket", raw.socket, DEFAULT_SOCKET)?;
    let root_socket = absolute("root_socket", raw.root_socket, DEFAULT_ROOT_SOCKET)?;
    if root_socket == socket {
        return Err(Invalid::new(
            "root_socket",
            "must differ from `socket`: one is for everyone, the other only for root",
        ));
    }
    Ok(DaemonConfig {
        socket,
        root_socket,
        users_file: absolute("users_file", raw.users_file, DEFAULT_USERS_FILE)?,
        max_connections: in_range("max_connections", raw.max_connections, 256, 1, 65536)? as usize,
        max_connections_per_user: in_range(
            "max_connections_per_user",
            raw.max_connections_per_user,
            4,
            1,
            1024,
        )? as usize,
        admin_lifetime: Duration::from_secs(in_range(
            "admin_lifetime_seconds",
            raw.admin_lifetime_seconds,
            60,
            5,
            3600,
        )? as u64),
        allow_user_self: raw.allow_user_self.unwrap_or(false),
        hostname,
        log_level,
        otp: otp(raw.otp)?,
        message,
        default_lang: languages.default_lang,
        lang_templates: languages.templates,
        max_segments: languages.max_segments,
        mask_visible_digits: in_range(
            "message.mask_visible_digits",
            raw.message.mask_visible_digits,
            4,
            0,
            4,
        )? as u8,
        origin_bound: raw.message.origin_bound.unwrap_or(false),
        policy: policy::policy(raw.policy, raw.services)?,
        lockout: policy::lockout(raw.lockout)?,
        resend: policy::resend(raw.resend)?,
        send_budget: policy::send_budget(raw.send_budget)?,
        backup_codes: policy::backup_codes(raw.backup_codes)?,
        store: policy::store(raw.store)?,
        metrics: crate::metrics::validate(raw.metrics)?,
        providers,
        directory: crate::directory::directory(raw.directory)?,
    })
}

fn otp(raw: RawOtp) -> Result<OtpPolicy, Invalid> {
    let d = OtpPolicy::default();
    Ok(OtpPolicy {
        length: in_range("otp.length", raw.length, d.length.into(), 4, 10)? as u8,
        kind: if raw.numeric.unwrap_or(true) {
            CodeKind::Numeric
        } else {
            CodeKind::Alphanumeric
        },
        expiry: Duration::from_secs(in_range(
            "otp.expiry_seconds",
            raw.expiry_seconds,
            d.expiry.as_secs() as i64,
            30,
            3600,
        )? as u64),
        max_attempts: in_range(
            "otp.max_attempts",
            raw.max_attempts,
            d.max_attempts.into(),
            1,
            10,
        )? as u32,
        max_resends: in_range(
            "otp.max_resends",
            raw.max_resends,
            d.max_resends.into(),
            0,
            10,
        )? as u32,
    })
}
