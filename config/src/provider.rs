//! `[[provider]]` entries: the raw TOML shape of each provider type and its
//! validation into [`ProviderConfig`].

use crate::error::Invalid;
use crate::template::{Template, Var};
use crate::types::DEFAULT_OUTBOX;
use crate::validate::{absolute, in_range};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

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

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum RawProvider {
    Outbox {
        name: Option<String>,
        path: Option<PathBuf>,
    },
    Http {
        name: Option<String>,
        url: String,
        method: Option<String>,
        content_type: Option<String>,
        payload: Option<String>,
        #[serde(default)]
        headers: BTreeMap<String, String>,
        success_codes: Option<Vec<i64>>,
        timeout_seconds: Option<i64>,
    },
}

pub(crate) fn validate(i: usize, raw: RawProvider) -> Result<ProviderConfig, Invalid> {
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
