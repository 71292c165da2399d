//! `type = "http"`: the custom gateway (the WSO2 "custom SMS provider"):
//! URL and payload templates, static headers, optional Basic, Bearer or
//! API-key header authentication, and success read from the status and,
//! for gateways that always answer 200, from the body.

use super::common::{self, HttpTransport, RawResilience, Resilience};
use super::provider_name;
use super::secret::{self, RawSecret, SecretRef};
use crate::error::Invalid;
use crate::template::{Template, Var};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

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
    pub auth: Option<HttpAuth>,
    pub success_codes: Vec<u16>,
    /// All must hold on a response with a success code.
    pub body_checks: Vec<BodyCheck>,
    /// Same as `resilience.timeout`; kept for callers that predate it.
    pub timeout: Duration,
    pub resilience: Resilience,
    pub transport: HttpTransport,
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

impl Header {
    /// Whether the header probably carries a credential, judged by its
    /// name. Such a header makes the config file a secret.
    pub fn looks_secret(&self) -> bool {
        let n = self.name.to_ascii_lowercase();
        [
            "auth",
            "token",
            "key",
            "secret",
            "password",
            "signature",
            "cookie",
        ]
        .iter()
        .any(|w| n.contains(w))
    }
}

#[derive(Debug, Clone)]
pub enum HttpAuth {
    Basic {
        username: String,
        password: SecretRef,
    },
    Bearer {
        token: SecretRef,
    },
    /// A header such as `X-API-Key: <key>`.
    ApiKey {
        header: String,
        key: SecretRef,
    },
}

impl HttpAuth {
    pub fn secret(&self) -> &SecretRef {
        match self {
            HttpAuth::Basic { password, .. } => password,
            HttpAuth::Bearer { token } => token,
            HttpAuth::ApiKey { key, .. } => key,
        }
    }
}

/// A check on the body of a response whose status is a success code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyCheck {
    /// RFC 6901 pointer into a JSON body. With `equals`, the value there
    /// (a string, or a number/bool written as text) must equal it;
    /// without, it must exist and be neither null nor false.
    JsonPointer {
        pointer: String,
        equals: Option<String>,
    },
    /// A regular expression (Rust `regex` syntax) that must match the body
    /// text somewhere. Compiled by the daemon when it builds the provider.
    Regex(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    pub name: Option<String>,
    pub url: String,
    pub method: Option<String>,
    pub content_type: Option<String>,
    pub payload: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub auth: Option<RawHttpAuth>,
    pub success_codes: Option<Vec<i64>>,
    pub success_json_pointer: Option<String>,
    pub success_json_equals: Option<String>,
    pub success_body_regex: Option<String>,
    pub timeout_seconds: Option<i64>,
    pub retries: Option<i64>,
    pub retry_backoff_ms: Option<i64>,
    pub breaker_failures: Option<i64>,
    pub breaker_cooldown_seconds: Option<i64>,
    pub ca_file: Option<PathBuf>,
    pub proxy: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum RawHttpAuth {
    Basic {
        username: String,
        password: Option<String>,
        password_file: Option<PathBuf>,
        password_credential: Option<String>,
    },
    Bearer {
        token: Option<String>,
        token_file: Option<PathBuf>,
        token_credential: Option<String>,
    },
    ApiKey {
        header: String,
        key: Option<String>,
        key_file: Option<PathBuf>,
        key_credential: Option<String>,
    },
}

pub(crate) fn validate(i: usize, raw: RawHttp) -> Result<HttpConfig, Invalid> {
    let key = |k: &str| format!("provider[{i}].{k}");
    let url_t =
        Template::parse(&raw.url, &Var::PAYLOAD).map_err(|e| Invalid::new(key("url"), e))?;
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
    let method = match raw
        .method
        .as_deref()
        .map(str::to_ascii_uppercase)
        .as_deref()
    {
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
    let content_type = match raw
        .content_type
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
    let payload = match raw.payload {
        Some(p) => {
            Some(Template::parse(&p, &Var::PAYLOAD).map_err(|e| Invalid::new(key("payload"), e))?)
        }
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
    let success_codes = match raw.success_codes {
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
    let body_checks = body_checks(
        &key,
        raw.success_json_pointer,
        raw.success_json_equals,
        raw.success_body_regex,
    )?;
    let headers = http_headers(&key("headers"), raw.headers)?;
    let auth = match raw.auth {
        None => None,
        Some(a) => Some(auth(&key("auth"), a, &headers)?),
    };
    let resilience = RawResilience {
        timeout_seconds: raw.timeout_seconds,
        retries: raw.retries,
        retry_backoff_ms: raw.retry_backoff_ms,
        breaker_failures: raw.breaker_failures,
        breaker_cooldown_seconds: raw.breaker_cooldown_seconds,
    }
    .validate(key, 10)?;
    Ok(HttpConfig {
        name: provider_name(&key("name"), raw.name, "http")?,
        url: url_t,
        method,
        content_type,
        payload,
        headers,
        auth,
        success_codes,
        body_checks,
        timeout: resilience.timeout,
        resilience,
        transport: common::transport(key, raw.ca_file, raw.proxy)?,
    })
}

fn body_checks(
    key: &impl Fn(&str) -> String,
    pointer: Option<String>,
    equals: Option<String>,
    regex: Option<String>,
) -> Result<Vec<BodyCheck>, Invalid> {
    let mut checks = Vec::new();
    match (pointer, equals) {
        (None, Some(_)) => {
            return Err(Invalid::new(
                key("success_json_equals"),
                "needs success_json_pointer to say where to look",
            ))
        }
        (Some(p), _) if !p.is_empty() && !p.starts_with('/') => {
            return Err(Invalid::new(
                key("success_json_pointer"),
                "must be a JSON pointer starting with '/', e.g. \"/messages/0/status\"",
            ))
        }
        (Some(pointer), equals) => checks.push(BodyCheck::JsonPointer { pointer, equals }),
        (None, None) => {}
    }
    if let Some(r) = regex {
        if r.is_empty() || r.len() > 1024 {
            return Err(Invalid::new(
                key("success_body_regex"),
                "must be 1 to 1024 characters",
            ));
        }
        checks.push(BodyCheck::Regex(r));
    }
    Ok(checks)
}

fn auth(base: &str, raw: RawHttpAuth, headers: &[Header]) -> Result<HttpAuth, Invalid> {
    let k = |s: &str| format!("{base}.{s}");
    let clash = |name: &str| {
        headers
            .iter()
            .any(|h| h.name.eq_ignore_ascii_case(name))
            .then(|| {
                Invalid::new(
                    base,
                    format!("sets the {name} header, which headers also sets; keep one"),
                )
            })
    };
    let required = |s: Option<SecretRef>| s.ok_or_else(|| Invalid::new(base, "has no secret"));
    Ok(match raw {
        RawHttpAuth::Basic {
            username,
            password,
            password_file,
            password_credential,
        } => {
            if let Some(e) = clash("Authorization") {
                return Err(e);
            }
            if username.is_empty()
                || username.contains(':')
                || username.chars().any(char::is_control)
            {
                return Err(Invalid::new(
                    k("username"),
                    "must be non-empty, without ':' or control characters",
                ));
            }
            let password = secret::validate(
                &k("password"),
                RawSecret {
                    inline: password,
                    file: password_file,
                    credential: password_credential,
                },
                true,
            )?;
            HttpAuth::Basic {
                username,
                password: required(password)?,
            }
        }
        RawHttpAuth::Bearer {
            token,
            token_file,
            token_credential,
        } => {
            if let Some(e) = clash("Authorization") {
                return Err(e);
            }
            let token = secret::validate(
                &k("token"),
                RawSecret {
                    inline: token,
                    file: token_file,
                    credential: token_credential,
                },
                true,
            )?;
            HttpAuth::Bearer {
                token: required(token)?,
            }
        }
        RawHttpAuth::ApiKey {
            header,
            key,
            key_file,
            key_credential,
        } => {
            if !is_token(&header) {
                return Err(Invalid::new(k("header"), "is not a valid HTTP header name"));
            }
            if let Some(e) = clash(&header) {
                return Err(e);
            }
            let key = secret::validate(
                &k("key"),
                RawSecret {
                    inline: key,
                    file: key_file,
                    credential: key_credential,
                },
                true,
            )?;
            HttpAuth::ApiKey {
                header,
                key: required(key)?,
            }
        }
    })
}

fn is_token(name: &str) -> bool {
    const TCHAR: &str = "!#$%&'*+-.^_`|~";
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || TCHAR.contains(c))
}

/// RFC 9110 token characters for names; values must be visible ASCII or
/// spaces (no CR/LF: header injection).
fn http_headers(key: &str, raw: BTreeMap<String, String>) -> Result<Vec<Header>, Invalid> {
    raw.into_iter()
        .map(|(name, value)| {
            let k = format!("{key}.{name}");
            if !is_token(&name) {
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

/// The dotted key of the first credential written inline in this
/// provider's entry, if any.
pub(crate) fn inline_secret(i: usize, c: &HttpConfig) -> Option<String> {
    if let Some(a) = &c.auth {
        if a.secret().is_inline() {
            return Some(a.secret().key.clone());
        }
    }
    if let Some(h) = c.headers.iter().find(|h| h.looks_secret()) {
        return Some(format!("provider[{i}].headers.{}", h.name));
    }
    let sample = c.url.render(|_, out| out.push('0'));
    if let Ok(u) = url::Url::parse(&sample) {
        let secret_param = u.query_pairs().any(|(k, _)| {
            let k = k.to_ascii_lowercase();
            ["secret", "token", "password", "passwd"]
                .iter()
                .any(|w| k.contains(w))
        });
        if u.password().is_some() || secret_param {
            return Some(format!("provider[{i}].url"));
        }
    }
    None
}
