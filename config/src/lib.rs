//! The daemon's configuration.
//!
//! Loading goes in two steps: serde reads the TOML into raw structs that
//! refuse unknown keys ([`raw`]), then [`validate`] turns them into typed,
//! bounded values. Every error names the file, the line and the key, so an
//! administrator can fix it without reading our source.

pub mod directory;
pub mod error;
pub mod lang;
mod locate;
pub mod metrics;
pub mod mobile;
pub mod perms;
pub mod policy;
pub mod provider;
pub mod raw;
pub mod template;
pub mod types;
pub mod users;
mod validate;

pub use directory::{DirectoryConfig, DirectoryTls, NumberSource};
pub use error::ConfigError;
pub use lang::LangTag;
pub use mobile::Mobile;
pub use policy::{
    service_family, BackupCodes, Cidr, GlobalScope, Lockout, NameRule, NoMobile, PgSslMode, Policy,
    PostgresConfig, Resend, SendBudget, ServicePolicy, StoreBackend, StoreConfig, StoreSync,
};
pub use provider::{ContentType, Header, HttpConfig, HttpMethod, OutboxConfig, ProviderConfig};
pub use template::{Template, Var};
pub use types::*;
pub use users::Users;

use std::path::Path;

/// Reads and validates the daemon config at `path`.
pub fn load(path: &Path) -> Result<DaemonConfig, ConfigError> {
    let text = read_bounded(path)?;
    let mut config = parse(path, &text)?;
    provider::refuse_readable_inline_secrets(path, &text, &config)?;
    provider::locate_secrets(path, &text, &mut config);
    Ok(config)
}

/// Validates config text; `path` is only used in error messages.
pub fn parse(path: &Path, text: &str) -> Result<DaemonConfig, ConfigError> {
    let raw: raw::RawConfig = locate::from_toml(path, text)?;
    validate::config(raw).map_err(|e| e.locate(path, text))
}

/// Config files are small; refusing huge ones keeps a mistake (or a
/// symlink to /dev/zero) from eating the daemon's memory.
pub(crate) const MAX_FILE_BYTES: u64 = 1024 * 1024;

pub(crate) fn read_bounded(path: &Path) -> Result<String, ConfigError> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| ConfigError::io(path, e))?;
    let mut text = String::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| ConfigError::io(path, e))?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(ConfigError::plain(
            path,
            format!("file is larger than {MAX_FILE_BYTES} bytes"),
        ));
    }
    Ok(text)
}
