//! Where the workspace's build outputs are.
//!
//! The test binary lives in `target/<profile>/deps/`, so the binaries and
//! the module it drives are one directory up. `SMSOTP_TARGET_DIR`, if set,
//! names that directory directly (e.g. `/src/target/release`).

use std::path::{Path, PathBuf};

/// The directory holding `smsotpd`, `smsotpctl` and `libpam_smsotp.so`.
pub fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SMSOTP_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("current_exe");
    let mut dir = exe
        .parent()
        .expect("test binary has a parent")
        .to_path_buf();
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.pop();
    }
    dir
}

fn require(name: &str) -> PathBuf {
    let path = target_dir().join(name);
    if !path.is_file() {
        panic!(
            "{} not found: run `cargo build --workspace` first \
             (or set SMSOTP_TARGET_DIR to the directory holding the build outputs)",
            path.display()
        );
    }
    path
}

/// The daemon binary.
pub fn smsotpd() -> PathBuf {
    require("smsotpd")
}

/// The admin CLI.
pub fn smsotpctl() -> PathBuf {
    require("smsotpctl")
}

/// The PAM module, by absolute path (a pam.d line may name it that way).
pub fn pam_module() -> PathBuf {
    let path = require("libpam_smsotp.so");
    path.canonicalize().unwrap_or(path)
}

/// This crate's `raw-client` helper binary. Integration tests should prefer
/// `env!("CARGO_BIN_EXE_raw-client")`, which cargo guarantees is built.
pub fn raw_client() -> PathBuf {
    require("raw-client")
}

/// True when `path` has no whitespace (pam.d lines split on it).
pub fn is_pamd_safe(path: &Path) -> bool {
    !path.to_string_lossy().chars().any(char::is_whitespace)
}
