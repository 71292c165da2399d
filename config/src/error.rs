use std::fmt;
use std::path::{Path, PathBuf};

/// A config problem, with where it is. Displays as
/// `/etc/smsotp/smsotpd.toml:12: otp.length: must be between 4 and 10`.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

impl ConfigError {
    pub(crate) fn io(path: &Path, e: std::io::Error) -> Self {
        Self::plain(path, format!("cannot read: {e}"))
    }

    pub(crate) fn plain(path: &Path, message: impl Into<String>) -> Self {
        ConfigError {
            file: path.to_path_buf(),
            line: None,
            key: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": {key}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// A validation failure before it knows its file: the dotted key path
/// (`provider[1].url`) is enough to find the line later.
#[derive(Debug)]
pub(crate) struct Invalid {
    pub key: String,
    pub message: String,
}

impl Invalid {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Invalid {
            key: key.into(),
            message: message.into(),
        }
    }

    pub fn locate(self, path: &Path, text: &str) -> ConfigError {
        ConfigError {
            file: path.to_path_buf(),
            line: crate::locate::line_of_key(text, &self.key),
            key: Some(self.key),
            message: self.message,
        }
    }
}
