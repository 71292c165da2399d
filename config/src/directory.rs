//! `[directory]`: users' numbers read from LDAP (OpenLDAP, 389-DS/FreeIPA,
//! Active Directory), the way fleets keep them. Only where to ask and how
//! is checked here; the daemon's `directory` module connects, caches and
//! turns the values into E.164 numbers.

use crate::error::Invalid;
use crate::provider::secret::{self, RawSecret, SecretRef};
use crate::validate::in_range;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDirectory {
    pub url: Option<String>,
    pub starttls: Option<bool>,
    pub ca_file: Option<PathBuf>,
    pub bind_dn: Option<String>,
    pub bind_password_file: Option<PathBuf>,
    pub bind_password_credential: Option<String>,
    pub base_dn: Option<String>,
    pub filter: Option<String>,
    pub attributes: Option<Vec<String>>,
    pub default_country: Option<String>,
    pub cache_seconds: Option<i64>,
    pub negative_cache_seconds: Option<i64>,
    pub cache_entries: Option<i64>,
    pub timeout_seconds: Option<i64>,
    pub max_lookups: Option<i64>,
    pub sources: Option<Vec<String>>,
}

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirectoryTls {
    /// `ldaps://`: TLS from the first byte.
    Ldaps,
    /// `ldap://` upgraded with the StartTLS extended operation.
    StartTls,
    /// `ldap://` in clear: only to a loopback address.
    Plain,
}

/// Where a number may come from; [`DirectoryConfig::sources`] orders them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberSource {
    /// `users.toml` on this host.
    UsersFile,
    /// Enrolled at login or set with `smsotpctl set-mobile` (the store).
    Enrolled,
    Directory,
}

impl NumberSource {
    /// As the config writes it and `smsotpctl status` shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            NumberSource::UsersFile => "users.toml",
            NumberSource::Enrolled => "enrolled",
            NumberSource::Directory => "directory",
        }
    }
}

/// The order without a `[directory]` section, and its default with one:
/// the host's own file is an explicit local decision (a break-glass
/// number), an enrolled number was proven by a code the user received,
/// and the directory is the fleet-wide default for everyone else.
pub const DEFAULT_SOURCES: [NumberSource; 3] = [
    NumberSource::UsersFile,
    NumberSource::Enrolled,
    NumberSource::Directory,
];

#[derive(Debug, Clone)]
pub struct DirectoryConfig {
    /// `ldap://host:port` or `ldaps://host:port`, without a path.
    pub url: String,
    pub tls: DirectoryTls,
    /// PEM CA bundle the server's certificate must chain to; `None` means
    /// the system bundle.
    pub ca_file: Option<PathBuf>,
    /// `None`: anonymous bind.
    pub bind_dn: Option<String>,
    pub bind_password: Option<SecretRef>,
    pub base_dn: String,
    /// Holds `{{user}}` at least once; replaced by the RFC 4515-escaped name.
    pub filter: String,
    /// Read in this order; the first value that is a number wins.
    pub attributes: Vec<String>,
    /// ISO 3166 alpha-2 (upper case) for values written without `+`.
    pub default_country: Option<String>,
    pub cache_ttl: Duration,
    /// How long "no number" is believed (shorter: a number just added in
    /// the directory should work soon).
    pub negative_ttl: Duration,
    pub cache_entries: usize,
    /// Bounds connect, bind and search of one lookup together.
    pub timeout: Duration,
    /// Lookups in flight at once; more wait (within `timeout`).
    pub max_lookups: usize,
    pub sources: Vec<NumberSource>,
}

/// Filters are short; the bound keeps a typo from becoming a huge request.
const MAX_FILTER: usize = 1024;
const MAX_ATTRIBUTES: usize = 8;

pub(crate) fn directory(raw: Option<RawDirectory>) -> Result<Option<DirectoryConfig>, Invalid> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let Some(url) = raw.url else {
        return Err(Invalid::new(
            "directory.url",
            "is required: ldaps://HOST or ldap://HOST (StartTLS)",
        ));
    };
    let tls = tls("directory.url", &url, raw.starttls)?;
    let ca_file = match raw.ca_file {
        Some(p) if !p.is_absolute() => {
            return Err(Invalid::new(
                "directory.ca_file",
                format!("must be an absolute path, not {p:?}"),
            ))
        }
        other => other,
    };
    let password = RawSecret {
        inline: None,
        file: raw.bind_password_file,
        credential: raw.bind_password_credential,
    };
    let bind_password = secret::validate("directory.bind_password", password, false)?;
    let bind_dn = match raw.bind_dn {
        Some(dn) => Some(dn_value("directory.bind_dn", dn)?),
        None => None,
    };
    match (&bind_dn, &bind_password) {
        (Some(_), None) => {
            return Err(Invalid::new(
                "directory.bind_dn",
                "needs bind_password_file or bind_password_credential (leave both out to bind anonymously)",
            ))
        }
        (None, Some(p)) => return Err(Invalid::new(p.key.clone(), "needs bind_dn")),
        _ => {}
    }
    let Some(base_dn) = raw.base_dn else {
        return Err(Invalid::new(
            "directory.base_dn",
            "is required: where users are searched, e.g. \"ou=people,dc=example,dc=com\"",
        ));
    };
    let base_dn = dn_value("directory.base_dn", base_dn)?;
    let filter = filter(raw.filter.unwrap_or_else(|| "(uid={{user}})".into()))?;
    let attributes = attributes(raw.attributes)?;
    let default_country = match raw.default_country {
        Some(c) if c.len() == 2 && c.bytes().all(|b| b.is_ascii_alphabetic()) => {
            Some(c.to_ascii_uppercase())
        }
        Some(c) => {
            return Err(Invalid::new(
                "directory.default_country",
                format!("must be a two-letter ISO 3166 country code such as \"GB\", not {c:?}"),
            ))
        }
        None => None,
    };
    let secs = |key: &str, v: Option<i64>, default: i64, min: i64, max: i64| {
        in_range(key, v, default, min, max).map(|s| Duration::from_secs(s as u64))
    };
    let cache_ttl = secs("directory.cache_seconds", raw.cache_seconds, 300, 1, 86_400)?;
    let negative_ttl = secs(
        "directory.negative_cache_seconds",
        raw.negative_cache_seconds,
        cache_ttl.as_secs().min(30) as i64,
        0,
        cache_ttl.as_secs() as i64,
    )?;
    Ok(Some(DirectoryConfig {
        url,
        tls,
        ca_file,
        bind_dn,
        bind_password,
        base_dn,
        filter,
        attributes,
        default_country,
        cache_ttl,
        negative_ttl,
        cache_entries: in_range(
            "directory.cache_entries",
            raw.cache_entries,
            10_000,
            1,
            1_000_000,
        )? as usize,
        // A lookup comes before the send (15 s) within the module's own
        // 20 s: at most 5 s keeps a slow directory a clear denial.
        timeout: secs("directory.timeout_seconds", raw.timeout_seconds, 4, 1, 5)?,
        max_lookups: in_range("directory.max_lookups", raw.max_lookups, 4, 1, 64)? as usize,
        sources: sources(raw.sources)?,
    }))
}

fn tls(key: &str, url: &str, starttls: Option<bool>) -> Result<DirectoryTls, Invalid> {
    let parsed = url::Url::parse(url)
        .map_err(|e| Invalid::new(key, format!("is not a URL ({e}): ldaps://HOST[:PORT]")))?;
    if !matches!(parsed.path(), "" | "/")
        || parsed.query().is_some()
        || !parsed.username().is_empty()
    {
        return Err(Invalid::new(
            key,
            "must be just ldap[s]://HOST[:PORT]; the base, filter and bind DN have keys of their own",
        ));
    }
    let loopback = match parsed.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        // ldap:// is not a "special" scheme to the URL standard, so an
        // IPv4 address arrives as a name.
        Some(url::Host::Domain(d)) => {
            d == "localhost"
                || d.parse::<std::net::Ipv4Addr>()
                    .is_ok_and(|a| a.is_loopback())
        }
        None => false,
    };
    match (parsed.scheme(), starttls) {
        ("ldaps", Some(true)) => Err(Invalid::new(
            "directory.starttls",
            "is for ldap:// URLs; ldaps:// is TLS already",
        )),
        ("ldaps", _) => Ok(DirectoryTls::Ldaps),
        ("ldap", Some(true)) => Ok(DirectoryTls::StartTls),
        ("ldap", None) if !loopback => Ok(DirectoryTls::StartTls),
        ("ldap", _) if loopback => Ok(DirectoryTls::Plain),
        ("ldap", _) => Err(Invalid::new(
            "directory.starttls",
            "cannot be false for a non-loopback ldap:// URL: the bind password and the numbers would cross the network in clear",
        )),
        ("ldapi", _) => Err(Invalid::new(
            key,
            "ldapi:// (SASL EXTERNAL) is not supported yet; use ldaps:// or ldap:// with StartTLS",
        )),
        (other, _) => Err(Invalid::new(
            key,
            format!("scheme {other}:// is not LDAP; use ldaps:// or ldap://"),
        )),
    }
}

/// DNs go to the server as they are; control characters never belong in one.
fn dn_value(key: &str, dn: String) -> Result<String, Invalid> {
    if dn.trim().is_empty() || dn.len() > 1024 || dn.chars().any(char::is_control) {
        return Err(Invalid::new(
            key,
            "must be a DN of 1 to 1024 printable characters",
        ));
    }
    Ok(dn)
}

fn filter(f: String) -> Result<String, Invalid> {
    let key = "directory.filter";
    if f.len() > MAX_FILTER || f.chars().any(char::is_control) {
        return Err(Invalid::new(
            key,
            format!("must be at most {MAX_FILTER} printable characters"),
        ));
    }
    if !f.starts_with('(') || !f.ends_with(')') {
        return Err(Invalid::new(key, "must be one parenthesised LDAP filter"));
    }
    let mut depth = 0i32;
    for c in f.chars() {
        depth += match c {
            '(' => 1,
            ')' => -1,
            _ => 0,
        };
        if depth < 0 {
            break;
        }
    }
    if depth != 0 {
        return Err(Invalid::new(key, "has unbalanced parentheses"));
    }
    if !f.contains("{{user}}") {
        return Err(Invalid::new(
            key,
            "must contain {{user}}, e.g. \"(uid={{user}})\"",
        ));
    }
    if f.replace("{{user}}", "").contains("{{") {
        return Err(Invalid::new(key, "knows only the placeholder {{user}}"));
    }
    Ok(f)
}

fn attributes(list: Option<Vec<String>>) -> Result<Vec<String>, Invalid> {
    let key = "directory.attributes";
    let list = list.unwrap_or_else(|| vec!["mobile".into(), "telephoneNumber".into()]);
    if list.is_empty() || list.len() > MAX_ATTRIBUTES {
        return Err(Invalid::new(
            key,
            format!("must name 1 to {MAX_ATTRIBUTES} attributes"),
        ));
    }
    // RFC 4512 descr (keystring) or numericoid.
    for a in &list {
        let descr = a.len() <= 64
            && a.starts_with(|c: char| c.is_ascii_alphabetic())
            && a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        let oid = a.len() <= 64
            && a.split('.').count() > 1
            && a.split('.')
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        if !descr && !oid {
            return Err(Invalid::new(
                key,
                format!("{a:?} is not an attribute name (letters, digits, '-') or OID"),
            ));
        }
    }
    Ok(list)
}

fn sources(list: Option<Vec<String>>) -> Result<Vec<NumberSource>, Invalid> {
    let key = "directory.sources";
    let Some(list) = list else {
        return Ok(DEFAULT_SOURCES.to_vec());
    };
    let mut out = Vec::with_capacity(list.len());
    for s in &list {
        let source = DEFAULT_SOURCES
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| {
                Invalid::new(
                    key,
                    format!(
                        "{s:?} is not a source; use \"users.toml\", \"enrolled\" and \"directory\""
                    ),
                )
            })?;
        if out.contains(&source) {
            return Err(Invalid::new(key, format!("names {s:?} twice")));
        }
        out.push(source);
    }
    if !out.contains(&NumberSource::Directory) {
        return Err(Invalid::new(
            key,
            "must include \"directory\" (or remove the [directory] section)",
        ));
    }
    Ok(out)
}

impl DirectoryConfig {
    pub(crate) fn secrets_mut(&mut self) -> Vec<&mut SecretRef> {
        self.bind_password.iter_mut().collect()
    }
}

#[cfg(test)]
#[path = "directory_tests.rs"]
mod tests;
