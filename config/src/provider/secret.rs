//! Where a provider credential comes from. The config says where; the
//! daemon reads it when it builds the provider (at start and on SIGHUP, so
//! a rotated token is picked up by a reload).
//!
//! Three sources, one per key suffix:
//! - `KEY = "..."`: inline. Only allowed in a config that nobody but its
//!   owner can read (checked by [`crate::load`]).
//! - `KEY_file = "/abs/path"`: a file holding just the secret.
//! - `KEY_credential = "name"`: a systemd credential
//!   (`LoadCredential=name:/path` in the unit), read from
//!   `$CREDENTIALS_DIRECTORY/name`.

use crate::error::Invalid;
use std::fmt;
use std::path::PathBuf;

/// A reference to one secret, with the dotted key it was configured under
/// so errors can say which line to fix.
#[derive(Clone)]
pub struct SecretRef {
    /// `provider[0].auth_token_file` and the like.
    pub key: String,
    pub source: SecretSource,
    /// `FILE:LINE` of the key, filled in by [`crate::load`]; `None` for
    /// text parsed without a file.
    pub origin: Option<String>,
}

#[derive(Clone)]
pub enum SecretSource {
    Inline(InlineSecret),
    File(PathBuf),
    /// A systemd credential name (no `/`).
    Credential(String),
}

/// An inline secret value. Never shown by `Debug`; overwritten when
/// dropped (best effort: serde and toml held copies we cannot reach).
#[derive(Clone)]
pub struct InlineSecret(String);

impl InlineSecret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl Drop for InlineSecret {
    fn drop(&mut self) {
        let mut bytes = std::mem::take(&mut self.0).into_bytes();
        bytes.fill(0);
        // Keeps the compiler from dropping the fill as a dead store.
        std::hint::black_box(&bytes);
    }
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            SecretSource::Inline(_) => write!(f, "SecretRef({}: inline ***)", self.key),
            SecretSource::File(p) => write!(f, "SecretRef({}: {})", self.key, p.display()),
            SecretSource::Credential(n) => write!(f, "SecretRef({}: credential {n})", self.key),
        }
    }
}

impl SecretRef {
    pub fn is_inline(&self) -> bool {
        matches!(self.source, SecretSource::Inline(_))
    }

    /// `provider[0].auth_token_file (/etc/smsotp/smsotpd.toml:7)`: what an
    /// error about this secret should point at.
    pub fn location(&self) -> String {
        match &self.origin {
            Some(o) => format!("{o}: {}", self.key),
            None => self.key.clone(),
        }
    }
}

/// The raw `KEY`, `KEY_file`, `KEY_credential` triple of one secret.
pub(crate) struct RawSecret {
    pub inline: Option<String>,
    pub file: Option<PathBuf>,
    pub credential: Option<String>,
}

/// Exactly one of the three must be set when `required`; at most one
/// otherwise. `base` is the dotted key without suffix (`provider[0].auth_token`).
pub(crate) fn validate(
    base: &str,
    raw: RawSecret,
    required: bool,
) -> Result<Option<SecretRef>, Invalid> {
    let given = [
        raw.inline.is_some(),
        raw.file.is_some(),
        raw.credential.is_some(),
    ]
    .iter()
    .filter(|&&b| b)
    .count();
    let short = base.rsplit('.').next().unwrap_or(base);
    if given > 1 {
        return Err(Invalid::new(
            base,
            format!("set only one of {short}, {short}_file and {short}_credential"),
        ));
    }
    let secret = if let Some(v) = raw.inline {
        if v.is_empty() {
            return Err(Invalid::new(base, "is empty"));
        }
        SecretRef {
            key: base.to_string(),
            source: SecretSource::Inline(InlineSecret(v)),
            origin: None,
        }
    } else if let Some(p) = raw.file {
        let key = format!("{base}_file");
        if !p.is_absolute() {
            return Err(Invalid::new(
                key,
                format!("must be an absolute path, not {p:?}"),
            ));
        }
        SecretRef {
            key,
            source: SecretSource::File(p),
            origin: None,
        }
    } else if let Some(n) = raw.credential {
        let key = format!("{base}_credential");
        // systemd credential names are file names inside one directory.
        if n.is_empty()
            || n.len() > 255
            || n == "."
            || n == ".."
            || !n
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c))
        {
            return Err(Invalid::new(
                key,
                "must be a systemd credential name (letters, digits, '-', '_', '.', '@')",
            ));
        }
        SecretRef {
            key,
            source: SecretSource::Credential(n),
            origin: None,
        }
    } else if required {
        return Err(Invalid::new(
            base,
            format!("is required: set {short}_file (a 0600 file), {short}_credential (systemd LoadCredential=) or {short}"),
        ));
    } else {
        return Ok(None);
    };
    Ok(Some(secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(i: Option<&str>, f: Option<&str>, c: Option<&str>) -> RawSecret {
        RawSecret {
            inline: i.map(String::from),
            file: f.map(PathBuf::from),
            credential: c.map(String::from),
        }
    }

    #[test]
    fn exactly_one_source() {
        let e = validate("p.token", raw(Some("x"), Some("/f"), None), true).unwrap_err();
        assert!(e.message.contains("only one of token, token_file"));
        let e = validate("p.token", raw(None, None, None), true).unwrap_err();
        assert!(e.message.starts_with("is required"));
        assert!(validate("p.token", raw(None, None, None), false)
            .unwrap()
            .is_none());
        let e = validate("p.token", raw(None, Some("rel"), None), true).unwrap_err();
        assert_eq!(e.key, "p.token_file");
        let e = validate("p.token", raw(None, None, Some("../x")), true).unwrap_err();
        assert_eq!(e.key, "p.token_credential");
    }

    #[test]
    fn debug_never_shows_an_inline_value() {
        let s = validate("p.token", raw(Some("hunter2-secret"), None, None), true)
            .unwrap()
            .unwrap();
        let d = format!("{s:?}");
        assert!(!d.contains("hunter2"), "{d}");
        assert!(s.is_inline());
    }
}
