//! Files and the daemon: the module is installed, the config is valid and
//! private, the socket belongs to root in a directory only root can write,
//! and the daemon answers.

use super::{Finding, Host, Severity};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::time::Duration;

/// Where libpam loads modules named without a path (most specific first).
pub fn security_dirs() -> Vec<String> {
    let multiarch = format!("{}-linux-gnu", std::env::consts::ARCH);
    vec![
        format!("/lib/{multiarch}/security"),
        format!("/usr/lib/{multiarch}/security"),
        "/lib64/security".into(),
        "/usr/lib64/security".into(),
        "/lib/security".into(),
        "/usr/lib/security".into(),
    ]
}

pub fn module_installed(host: &Host) -> Vec<Finding> {
    for dir in security_dirs() {
        let shown = format!("{dir}/pam_smsotp.so");
        let Ok(meta) = std::fs::metadata(host.path(Path::new(&shown))) else {
            continue;
        };
        if meta.uid() != 0 || meta.mode() & 0o022 != 0 {
            return vec![Finding::new(
                "module.permissions",
                Severity::Error,
                shown.clone(),
                format!(
                    "owned by uid {} with mode {:04o}: whoever can write it runs code inside sshd and sudo",
                    meta.uid(),
                    meta.mode() & 0o7777
                ),
            )
            .fix(format!("chown root:root {shown} && chmod 0644 {shown}"))];
        }
        return vec![Finding::new(
            "module.installed",
            Severity::Ok,
            shown,
            "pam_smsotp.so is installed",
        )];
    }
    vec![Finding::new(
        "module.missing",
        Severity::Error,
        security_dirs()[0].clone(),
        "pam_smsotp.so is not installed in any PAM module directory",
    )
    .fix(format!(
        "install the smsotp package, or: install -m 0644 target/release/libpam_smsotp.so {}/pam_smsotp.so",
        security_dirs()[0]
    ))]
}

/// A file that may hold secrets: owned by root, not writable or readable
/// by others. `what` names its content for the message.
fn private_file(host: &Host, shown: &Path, what: &str, out: &mut Vec<Finding>) -> bool {
    let real = host.path(shown);
    let meta = match std::fs::metadata(&real) {
        Ok(m) => m,
        Err(e) => {
            out.push(
                Finding::new(
                    "config.missing",
                    Severity::Error,
                    shown.display().to_string(),
                    format!("cannot read {}: {e}", shown.display()),
                )
                .fix(format!(
                    "create it (examples in /usr/share/doc/smsotp/examples/), mode 0600, owner root: {}",
                    what
                )),
            );
            return false;
        }
    };
    let mode = meta.mode() & 0o7777;
    let mut ok = true;
    if meta.uid() != 0 || mode & 0o022 != 0 {
        ok = false;
        out.push(
            Finding::new(
                "config.permissions",
                Severity::Error,
                shown.display().to_string(),
                format!(
                    "owned by uid {} with mode {mode:04o}: someone other than root can change {what}",
                    meta.uid()
                ),
            )
            .fix(format!(
                "chown root:root {0} && chmod 0600 {0}",
                shown.display()
            )),
        );
    } else if mode & 0o004 != 0 {
        ok = false;
        out.push(
            Finding::new(
                "config.permissions",
                Severity::Error,
                shown.display().to_string(),
                format!("mode {mode:04o}: every local user can read {what}"),
            )
            .fix(format!("chmod 0600 {}", shown.display())),
        );
    }
    ok
}

/// Checks the daemon config and users file; returns the parsed config.
pub fn config(
    host: &Host,
    config: &Path,
    out: &mut Vec<Finding>,
) -> Option<smsotp_config::DaemonConfig> {
    if let Some(dir) = config.parent() {
        if let Ok(meta) = std::fs::metadata(host.path(dir)) {
            if meta.uid() != 0 || meta.mode() & 0o022 != 0 {
                out.push(
                    Finding::new(
                        "config.permissions",
                        Severity::Error,
                        dir.display().to_string(),
                        format!(
                            "directory owned by uid {} with mode {:04o}: a non-root user can replace the config",
                            meta.uid(),
                            meta.mode() & 0o7777
                        ),
                    )
                    .fix(format!("chown root:root {0} && chmod 0755 {0}", dir.display())),
                );
            }
        }
    }
    let config_ok = private_file(host, config, "the daemon config (provider tokens)", out);
    let real = host.path(config);
    if !real.is_file() {
        return None;
    }
    let parsed = match smsotp_config::load(&real) {
        Ok(c) => c,
        Err(e) => {
            out.push(
                Finding::new(
                    "config.invalid",
                    Severity::Error,
                    config.display().to_string(),
                    e.to_string(),
                )
                .fix("correct the file; check it with `smsotpd --check-config`"),
            );
            return None;
        }
    };
    let users_shown = parsed.users_file.clone();
    let users_ok = private_file(host, &users_shown, "the users' phone numbers", out);
    if users_ok {
        if let Err(e) = smsotp_config::Users::load(&host.path(&users_shown)) {
            out.push(
                Finding::new(
                    "config.invalid",
                    Severity::Error,
                    users_shown.display().to_string(),
                    e.to_string(),
                )
                .fix("correct the file; check it with `smsotpctl check-config`"),
            );
        } else if config_ok {
            out.push(Finding::new(
                "config.ok",
                Severity::Ok,
                config.display().to_string(),
                format!("valid and private (users file {})", users_shown.display()),
            ));
        }
    }
    Some(parsed)
}

pub fn daemon(socket: &Path) -> Vec<Finding> {
    let shown = socket.display().to_string();
    let start_fix = "start the daemon: `systemctl enable --now smsotpd` (without systemd: \
                     `smsotpd --config /etc/smsotp/smsotpd.toml &`), then `smsotpctl ping`";
    let meta = match std::fs::symlink_metadata(socket) {
        Ok(m) => m,
        Err(_) => {
            return vec![Finding::new(
                "daemon.down",
                Severity::Error,
                shown,
                "no socket: smsotpd is not running, so every login through pam_smsotp.so fails \
                 (or, with failmode=safe, needs no code)",
            )
            .fix(start_fix)]
        }
    };
    let mut out = Vec::new();
    if !meta.file_type().is_socket() {
        out.push(
            Finding::new(
                "socket.not-a-socket",
                Severity::Error,
                shown.clone(),
                "exists but is not a socket",
            )
            .fix(format!("remove {shown} and restart smsotpd")),
        );
        return out;
    }
    if meta.uid() != 0 {
        out.push(
            Finding::new(
                "socket.owner",
                Severity::Error,
                shown.clone(),
                format!(
                    "owned by uid {}, not root: another program may be answering for smsotpd and approving codes",
                    meta.uid()
                ),
            )
            .fix(format!("stop whatever created it, remove {shown}, restart smsotpd as root")),
        );
    }
    if let Some(dir) = socket.parent() {
        if let Ok(dm) = std::fs::metadata(dir) {
            if dm.uid() != 0 || (dm.mode() & 0o022 != 0 && dm.mode() & 0o1000 == 0) {
                out.push(
                    Finding::new(
                        "socket.directory",
                        Severity::Error,
                        dir.display().to_string(),
                        format!(
                            "owned by uid {} with mode {:04o}: a non-root user can replace the socket",
                            dm.uid(),
                            dm.mode() & 0o7777
                        ),
                    )
                    .fix(format!("chown root:root {0} && chmod 0755 {0}", dir.display())),
                );
            }
        }
    }
    if meta.mode() & 0o006 != 0o006 {
        out.push(
            Finding::new(
                "socket.mode",
                Severity::Warning,
                shown.clone(),
                format!(
                    "mode {:04o}: non-root callers (smsotpctl, screen lockers with allow_user_self) \
                     cannot connect; the daemon sets 0666 and authorises each request from SO_PEERCRED",
                    meta.mode() & 0o7777
                ),
            )
            .fix(format!("chmod 0666 {shown} (or restart smsotpd)")),
        );
    }
    match smsotp_proto::Client::connect(socket, Duration::from_secs(3), "smsotpctl-doctor") {
        Ok(client) => out.push(Finding::new(
            "daemon.up",
            Severity::Ok,
            shown,
            format!("smsotpd answers ({})", client.server()),
        )),
        Err(e) => out.push(
            Finding::new(
                "daemon.down",
                Severity::Error,
                shown,
                format!("smsotpd does not answer: {e}"),
            )
            .fix(start_fix),
        ),
    }
    out
}
