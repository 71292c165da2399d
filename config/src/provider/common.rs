//! Settings every provider shares: how long one try may take, how often a
//! temporary failure is retried, when the circuit breaker skips the
//! provider, and (for HTTP providers) base URL, extra CA and proxy.

use crate::error::Invalid;
use crate::validate::in_range;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// How the chain treats one provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resilience {
    /// One try, from connect to answer.
    pub timeout: Duration,
    /// Extra tries after a temporary failure (never after a permanent one).
    pub retries: u32,
    /// Delay before the first retry; doubled for each further one, with
    /// jitter so many hosts do not retry in step.
    pub backoff: Duration,
    /// Consecutive failed sends that open the circuit breaker.
    pub breaker_failures: u32,
    /// How long an open breaker skips the provider before one probe.
    pub breaker_cooldown: Duration,
}

impl Default for Resilience {
    fn default() -> Self {
        Resilience {
            timeout: Duration::from_secs(10),
            retries: 1,
            backoff: Duration::from_millis(500),
            breaker_failures: 3,
            breaker_cooldown: Duration::from_secs(60),
        }
    }
}

/// The raw keys behind [`Resilience`], as written.
#[derive(Default)]
pub(crate) struct RawResilience {
    pub timeout_seconds: Option<i64>,
    pub retries: Option<i64>,
    pub retry_backoff_ms: Option<i64>,
    pub breaker_failures: Option<i64>,
    pub breaker_cooldown_seconds: Option<i64>,
}

impl RawResilience {
    pub(crate) fn validate(
        self,
        key: impl Fn(&str) -> String,
        default_timeout: i64,
    ) -> Result<Resilience, Invalid> {
        let d = Resilience::default();
        Ok(Resilience {
            timeout: secs(in_range(
                &key("timeout_seconds"),
                self.timeout_seconds,
                default_timeout,
                1,
                60,
            )?),
            retries: in_range(&key("retries"), self.retries, d.retries.into(), 0, 5)? as u32,
            backoff: Duration::from_millis(in_range(
                &key("retry_backoff_ms"),
                self.retry_backoff_ms,
                d.backoff.as_millis() as i64,
                10,
                10_000,
            )? as u64),
            breaker_failures: in_range(
                &key("breaker_failures"),
                self.breaker_failures,
                d.breaker_failures.into(),
                1,
                100,
            )? as u32,
            breaker_cooldown: secs(in_range(
                &key("breaker_cooldown_seconds"),
                self.breaker_cooldown_seconds,
                d.breaker_cooldown.as_secs() as i64,
                1,
                3600,
            )?),
        })
    }
}

fn secs(v: i64) -> Duration {
    Duration::from_secs(v as u64)
}

/// How an HTTP provider reaches its gateway.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpTransport {
    /// PEM file with extra trusted CA certificates, added to the system's
    /// trust store (a provider's private CA, an inspecting proxy's CA).
    pub ca_file: Option<PathBuf>,
    /// `http://host:port` of an HTTP proxy (CONNECT for https). No
    /// proxy unless set: environment variables are not consulted, so a
    /// stray `https_proxy` cannot route codes somewhere unexpected.
    pub proxy: Option<String>,
}

pub(crate) fn transport(
    key: impl Fn(&str) -> String,
    ca_file: Option<PathBuf>,
    proxy: Option<String>,
) -> Result<HttpTransport, Invalid> {
    if let Some(p) = &ca_file {
        if !p.is_absolute() {
            return Err(Invalid::new(
                key("ca_file"),
                format!("must be an absolute path, not {p:?}"),
            ));
        }
    }
    let proxy = match proxy {
        None => None,
        Some(p) => {
            let u = url::Url::parse(&p)
                .map_err(|e| Invalid::new(key("proxy"), format!("is not a URL: {e}")))?;
            if u.scheme() != "http" && u.scheme() != "https" {
                return Err(Invalid::new(
                    key("proxy"),
                    format!("scheme must be http or https, not {:?}", u.scheme()),
                ));
            }
            if !u.username().is_empty() || u.password().is_some() {
                return Err(Invalid::new(
                    key("proxy"),
                    "must not carry credentials (they would sit in the config and the logs)",
                ));
            }
            if u.host_str().is_none_or(str::is_empty) {
                return Err(Invalid::new(key("proxy"), "has no host"));
            }
            Some(p)
        }
    };
    Ok(HttpTransport { ca_file, proxy })
}

/// A base URL or endpoint that will receive credentials or codes: https,
/// or plain http only to this host (tests, a local relay). No user info,
/// query or fragment, since those would leak into logs.
pub(crate) fn secure_url(key: &str, raw: &str, what: &str) -> Result<String, Invalid> {
    let u = url::Url::parse(raw).map_err(|e| Invalid::new(key, format!("is not a URL: {e}")))?;
    let host = u.host_str().unwrap_or("");
    if host.is_empty() {
        return Err(Invalid::new(key, "has no host"));
    }
    match u.scheme() {
        "https" => {}
        "http" if is_loopback(host) => {}
        "http" => {
            return Err(Invalid::new(
                key,
                format!("must be https: {what} would cross the network in clear text (plain http is allowed to localhost only)"),
            ))
        }
        other => {
            return Err(Invalid::new(
                key,
                format!("scheme must be https, not {other:?}"),
            ))
        }
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(Invalid::new(
            key,
            "must not carry credentials; use the provider's secret keys",
        ));
    }
    if u.query().is_some() || u.fragment().is_some() {
        return Err(Invalid::new(key, "must not have a query or fragment"));
    }
    Ok(raw.trim_end_matches('/').to_string())
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A sender: an E.164 number, a short code, or an alphanumeric sender ID
/// (1-11 letters, digits or spaces, at least one letter).
pub(crate) fn sender(key: &str, raw: &str) -> Result<String, Invalid> {
    let ok = if let Some(digits) = raw.strip_prefix('+') {
        crate::mobile::Mobile::parse(raw).is_ok() && !digits.is_empty()
    } else if raw.bytes().all(|b| b.is_ascii_digit()) {
        (3..=15).contains(&raw.len())
    } else {
        (1..=11).contains(&raw.len())
            && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b' ')
            && raw.bytes().any(|b| b.is_ascii_alphabetic())
    };
    if !ok {
        return Err(Invalid::new(
            key,
            "must be an E.164 number (+15551234567), a short code, or an alphanumeric sender ID of at most 11 characters",
        ));
    }
    Ok(raw.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secure_url_rules() {
        assert_eq!(
            secure_url("k", "https://api.twilio.com/", "x").unwrap(),
            "https://api.twilio.com"
        );
        assert!(secure_url("k", "http://127.0.0.1:9/", "x").is_ok());
        assert!(secure_url("k", "http://[::1]:9", "x").is_ok());
        assert!(secure_url("k", "http://localhost:9", "x").is_ok());
        let e = secure_url("k", "http://api.twilio.com", "the token").unwrap_err();
        assert!(e.message.contains("clear text"), "{}", e.message);
        assert!(secure_url("k", "https://u:p@h", "x").is_err());
        assert!(secure_url("k", "https://h/?a=b", "x").is_err());
        assert!(secure_url("k", "ftp://h", "x").is_err());
    }

    #[test]
    fn senders() {
        assert!(sender("k", "+15005550006").is_ok());
        assert!(sender("k", "ACME Corp").is_ok());
        assert!(sender("k", "12345").is_ok());
        assert!(sender("k", "TooLongSender1").is_err());
        assert!(sender("k", "+1").is_err());
        assert!(sender("k", "bad\"quote").is_err());
    }

    #[test]
    fn proxy_rules() {
        let k = |s: &str| s.to_string();
        assert!(transport(k, None, Some("http://proxy:3128".into())).is_ok());
        assert!(transport(k, None, Some("http://u:p@proxy:3128".into())).is_err());
        assert!(transport(k, None, Some("socks5://proxy".into())).is_err());
        assert!(transport(k, Some("rel.pem".into()), None).is_err());
    }
}
