//! Raw -> validated. Each check names its key path; `Invalid::locate` adds
//! the file and line.

use crate::error::Invalid;
use crate::raw::{RawConfig, RawOtp, RawProvider};
use crate::template::{Template, Var};
use crate::types::*;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

fn in_range(
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

fn absolute(key: &str, path: Option<PathBuf>, default: &str) -> Result<PathBuf, Invalid> {
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
    let message = Template::parse(message_text, &Var::MESSAGE)
        .map_err(|e| Invalid::new("message.template", e))?;
    if !message.uses(Var::Code) {
        return Err(Invalid::new("message.template", "must contain {{code}}"));
    }
    let mut providers = Vec::with_capacity(raw.providers.len().max(1));
    for (i, p) in raw.providers.into_iter().enumerate() {
        providers.push(provider(i, p)?);
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
    Ok(DaemonConfig {
        socket: absolute("socket", raw.socket, DEFAULT_SOCKET)?,
        users_file: absolute("users_file", raw.users_file, DEFAULT_USERS_FILE)?,
        max_connections: in_range("max_connections", raw.max_connections, 256, 1, 65536)? as usize,
        allow_user_self: raw.allow_user_self.unwrap_or(false),
        hostname,
        log_level,
        otp: otp(raw.otp)?,
        message,
        providers,
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

fn provider(i: usize, raw: RawProvider) -> Result<ProviderConfig, Invalid> {
    let key = |k: &str| format!("provider[{i}].{k}");
    match raw {
        RawProvider::Outbox { name, path } => Ok(ProviderConfig::Outbox(OutboxConfig {
            name: provider_name(&key("name"), name, "outbox")?,
            path: absolute(&key("path"), path, DEFAULT_OUTBOX)?,
        })),
        RawProvider::Http {
            name,
            url,
            method,
            content_type,
            payload,
            headers,
            success_codes,
            timeout_seconds,
        } => {
            let url_t =
                Template::parse(&url, &Var::PAYLOAD).map_err(|e| Invalid::new(key("url"), e))?;
            // Check the URL's shape with harmless stand-ins for the placeholders.
            let sample = url_t.render(|_, out| out.push('0'));
            match url::Url::parse(&sample) {
                Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {
                    if u.host_str().is_none_or(str::is_empty) {
                        return Err(Invalid::new(key("url"), "has no host"));
                    }
                }
                Ok(u) => {
                    return Err(Invalid::new(
                        key("url"),
                        format!("scheme must be http or https, not {:?}", u.scheme()),
                    ))
                }
                Err(e) => return Err(Invalid::new(key("url"), format!("is not a URL: {e}"))),
            }
            let method = match method.as_deref().map(str::to_ascii_uppercase).as_deref() {
                None | Some("POST") => HttpMethod::Post,
                Some("PUT") => HttpMethod::Put,
                Some("GET") => HttpMethod::Get,
                Some(other) => {
                    return Err(Invalid::new(
                        key("method"),
                        format!("must be POST, PUT or GET, not {other:?}"),
                    ))
                }
            };
            let content_type = match content_type
                .as_deref()
                .map(str::to_ascii_lowercase)
                .as_deref()
            {
                None | Some("json") => ContentType::Json,
                Some("form") => ContentType::Form,
                Some(other) => {
                    return Err(Invalid::new(
                        key("content_type"),
                        format!("must be json or form, not {other:?}"),
                    ))
                }
            };
            let payload = match payload {
                Some(p) => Some(
                    Template::parse(&p, &Var::PAYLOAD)
                        .map_err(|e| Invalid::new(key("payload"), e))?,
                ),
                None => None,
            };
            if payload.is_some() && method == HttpMethod::Get {
                return Err(Invalid::new(
                    key("payload"),
                    "a GET request has no body; put {{mobile}} and {{body}} in the url instead",
                ));
            }
            let sends_something =
                url_t.uses(Var::Body) || payload.as_ref().is_some_and(|p| p.uses(Var::Body));
            if !sends_something && method != HttpMethod::Get && payload.is_none() {
                return Err(Invalid::new(
                    key("payload"),
                    "is required for POST and PUT, e.g. '{\"to\": {{mobile}}, \"text\": {{body}}}'",
                ));
            }
            if !sends_something {
                return Err(Invalid::new(
                    key("payload"),
                    "neither the url nor the payload uses {{body}}, so the code would never be sent",
                ));
            }
            let success_codes = match success_codes {
                None => vec![200, 201, 202],
                Some(v) if v.is_empty() => {
                    return Err(Invalid::new(
                        key("success_codes"),
                        "must list at least one status",
                    ))
                }
                Some(v) => v
                    .into_iter()
                    .map(|c| {
                        if (100..=599).contains(&c) {
                            Ok(c as u16)
                        } else {
                            Err(Invalid::new(
                                key("success_codes"),
                                format!("{c} is not an HTTP status (100-599)"),
                            ))
                        }
                    })
                    .collect::<Result<_, _>>()?,
            };
            Ok(ProviderConfig::Http(HttpConfig {
                name: provider_name(&key("name"), name, "http")?,
                url: url_t,
                method,
                content_type,
                payload,
                headers: http_headers(&key("headers"), headers)?,
                success_codes,
                timeout: Duration::from_secs(in_range(
                    &key("timeout_seconds"),
                    timeout_seconds,
                    10,
                    1,
                    60,
                )? as u64),
            }))
        }
    }
}

fn provider_name(key: &str, name: Option<String>, default: &str) -> Result<String, Invalid> {
    let n = name.unwrap_or_else(|| default.to_string());
    if n.is_empty()
        || n.len() > 64
        || !n
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(Invalid::new(
            key,
            "must be 1 to 64 letters, digits, '-' or '_'",
        ));
    }
    Ok(n)
}

/// RFC 9110 token characters for names; values must be visible ASCII or
/// spaces (no CR/LF: header injection).
fn http_headers(key: &str, raw: BTreeMap<String, String>) -> Result<Vec<Header>, Invalid> {
    const TCHAR: &str = "!#$%&'*+-.^_`|~";
    raw.into_iter()
        .map(|(name, value)| {
            let k = format!("{key}.{name}");
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || TCHAR.contains(c))
            {
                return Err(Invalid::new(k, "is not a valid HTTP header name"));
            }
            if !value
                .chars()
                .all(|c| c == ' ' || c == '\t' || c.is_ascii_graphic())
            {
                return Err(Invalid::new(
                    k,
                    "value may hold only visible ASCII and spaces",
                ));
            }
            Ok(Header { name, value })
        })
        .collect()
}
