//! Reads a provider credential from where the config says it is. The
//! value goes into a wiped-on-drop buffer and is never part of an error.

use super::ProviderError;
use smsotp_config::perms::{self, Role};
use smsotp_config::provider::{SecretRef, SecretSource};
use std::io::Read;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Tokens and keys are short; a larger file is a wrong path (a log, a
/// certificate bundle), not a credential.
const MAX_SECRET_BYTES: u64 = 16 * 1024;

pub(crate) fn read(secret: &SecretRef) -> Result<Zeroizing<String>, ProviderError> {
    let path = match &secret.source {
        SecretSource::Inline(v) => return Ok(Zeroizing::new(v.expose().to_string())),
        SecretSource::File(p) => p.clone(),
        SecretSource::Credential(name) => credential_path(secret, name)?,
    };
    read_file(secret, &path)
}

fn credential_path(secret: &SecretRef, name: &str) -> Result<PathBuf, ProviderError> {
    match std::env::var_os("CREDENTIALS_DIRECTORY") {
        Some(dir) if !dir.is_empty() => Ok(Path::new(&dir).join(name)),
        _ => Err(ProviderError::Config(format!(
            "{}: $CREDENTIALS_DIRECTORY is not set; add LoadCredential={name}:/path/to/file \
             to the smsotpd unit, or use a *_file key",
            secret.location()
        ))),
    }
}

/// A PEM key (Vonage's application key): like [`read`], but the lines of
/// the PEM are kept.
pub(crate) fn read_pem(secret: &SecretRef) -> Result<Zeroizing<String>, ProviderError> {
    match &secret.source {
        SecretSource::File(p) => read_file_lines(secret, p, true),
        SecretSource::Credential(n) => read_file_lines(secret, &credential_path(secret, n)?, true),
        SecretSource::Inline(_) => read(secret),
    }
}

fn read_file(secret: &SecretRef, path: &Path) -> Result<Zeroizing<String>, ProviderError> {
    read_file_lines(secret, path, false)
}

fn read_file_lines(
    secret: &SecretRef,
    path: &Path,
    multiline: bool,
) -> Result<Zeroizing<String>, ProviderError> {
    let fail = |what: String| {
        ProviderError::Config(format!("{}: {} {what}", secret.location(), path.display()))
    };
    perms::check(path, Role::Secret)
        .map_err(|e| ProviderError::Config(format!("{}: {e}", secret.location())))?;
    let file = std::fs::File::open(path).map_err(|e| fail(format!("cannot be read: {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| fail(format!("cannot be read: {e}")))?;
    if !meta.is_file() {
        return Err(fail("is not a regular file".into()));
    }
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(MAX_SECRET_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(format!("cannot be read: {e}")))?;
    if bytes.len() as u64 > MAX_SECRET_BYTES {
        return Err(fail(format!(
            "is larger than {MAX_SECRET_BYTES} bytes; it should hold only the secret"
        )));
    }
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return Err(fail("is not UTF-8 text".into()));
    };
    // `echo TOKEN > file` adds a newline; editors may add one too.
    let value = text.trim_end_matches(['\n', '\r']);
    if value.is_empty() {
        return Err(fail("is empty".into()));
    }
    // The value goes into HTTP headers and form fields: no line breaks.
    if value
        .chars()
        .any(|c| c.is_control() && !(multiline && (c == '\n' || c == '\r')))
    {
        return Err(fail(
            "holds control characters or more than one line; it should hold only the secret".into(),
        ));
    }
    Ok(Zeroizing::new(value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    fn file_ref(path: &Path) -> SecretRef {
        SecretRef {
            key: "provider[0].auth_token_file".into(),
            source: SecretSource::File(path.to_path_buf()),
            origin: Some("/etc/smsotp/smsotpd.toml:7".into()),
        }
    }

    #[test]
    fn reads_a_private_file_without_its_newline() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t");
        fs::write(&p, "s3cr3t-value\n").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read(&file_ref(&p)).unwrap().as_str(), "s3cr3t-value");
    }

    #[test]
    fn refuses_readable_empty_multiline_and_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t");
        fs::write(&p, "s3cr3t-value\n").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
        let e = read(&file_ref(&p)).unwrap_err().to_string();
        assert!(
            e.starts_with("/etc/smsotp/smsotpd.toml:7: provider[0].auth_token_file: "),
            "{e}"
        );
        assert!(e.contains("readable by group root (mode 0640)"), "{e}");
        assert!(!e.contains("s3cr3t"), "{e}");

        fs::write(&p, "a\nb\n").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
        let e = read(&file_ref(&p)).unwrap_err().to_string();
        assert!(e.contains("more than one line"), "{e}");

        fs::write(&p, "\n").unwrap();
        assert!(read(&file_ref(&p))
            .unwrap_err()
            .to_string()
            .contains("is empty"));

        let e = read(&file_ref(&dir.path().join("nope")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot be read"), "{e}");
    }
}
