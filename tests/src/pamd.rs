//! A temporary pam.d directory for `pam_start_confdir`.
//!
//! Service files name the module by absolute path, so nothing is installed
//! into `/lib/.../security` or `/etc/pam.d`.

use crate::paths;
use std::fs;
use std::path::Path;

pub struct PamConfDir {
    dir: tempfile::TempDir,
}

impl Default for PamConfDir {
    fn default() -> Self {
        Self::new()
    }
}

impl PamConfDir {
    pub fn new() -> PamConfDir {
        let dir = tempfile::Builder::new()
            .prefix("smsotp-pamd-")
            .tempdir_in("/tmp")
            .expect("create pam.d temp dir");
        PamConfDir { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `contents` as the service file `service` (lower case: libpam
    /// lower-cases service names).
    pub fn write(&self, service: &str, contents: &str) {
        assert_eq!(
            service,
            service.to_lowercase(),
            "libpam lower-cases service names; use a lower-case one"
        );
        fs::write(self.dir.path().join(service), contents).expect("write pam.d service");
    }

    /// `auth required pam_permit.so` then `auth <control> pam_smsotp ...`,
    /// with permissive account and session lines.
    pub fn smsotp_service(&self, service: &str, socket: &Path, opts: &str) {
        self.write(service, &smsotp_stack(socket, opts));
    }

    /// `auth requisite pam_unix.so nodelay` (a wrong password stops the
    /// stack before any SMS is sent) then the module.
    pub fn unix_then_smsotp(&self, service: &str, socket: &Path, opts: &str) {
        self.write(service, &unix_then_smsotp_stack(socket, opts));
    }
}

/// The module's auth line: `auth <control> /ABS/libpam_smsotp.so socket=... opts`.
pub fn module_line(control: &str, socket: &Path, opts: &str) -> String {
    let module = paths::pam_module();
    assert!(
        paths::is_pamd_safe(&module),
        "module path has whitespace: {}",
        module.display()
    );
    assert!(
        paths::is_pamd_safe(socket),
        "socket path has whitespace: {}",
        socket.display()
    );
    let mut line = format!(
        "auth {control} {} socket={}",
        module.display(),
        socket.display()
    );
    if !opts.trim().is_empty() {
        line.push(' ');
        line.push_str(opts.trim());
    }
    line.push('\n');
    line
}

const ACCOUNT_SESSION: &str = "account required pam_permit.so\nsession required pam_permit.so\n";

pub fn smsotp_stack(socket: &Path, opts: &str) -> String {
    format!(
        "auth required pam_permit.so\n{}{ACCOUNT_SESSION}",
        module_line("required", socket, opts)
    )
}

pub fn unix_then_smsotp_stack(socket: &Path, opts: &str) -> String {
    format!(
        "auth requisite pam_unix.so nodelay\n{}{ACCOUNT_SESSION}",
        module_line("required", socket, opts)
    )
}
