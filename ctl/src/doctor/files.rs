//! Files and the daemon: the module is installed, the config is valid and
//! private, the files it names pass the daemon's own permission rule, the
//! socket belongs to root in a directory only root can write, and the
//! daemon answers.

use super::{Finding, Host, Severity};
use smsotp_config::perms::{self, Role, Who};
use smsotp_config::provider::SecretSource;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
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

/// A file smsotpd trusts, judged by the daemon's own rule
/// ([`perms::check`]: owner, write bits, every directory on the way,
/// links), so doctor and daemon never disagree about what is refused.
/// Missing files are reported only when `what` says what they hold.
fn trusted_file(
    host: &Host,
    shown: &Path,
    role: Role,
    what: Option<&str>,
    out: &mut Vec<Finding>,
) -> bool {
    let real = host.path(shown);
    let meta = match std::fs::metadata(&real) {
        Ok(m) => m,
        Err(e) => {
            let Some(what) = what else {
                return true;
            };
            out.push(
                Finding::new(
                    "config.missing",
                    Severity::Error,
                    shown.display().to_string(),
                    format!("cannot read {}: {e}", shown.display()),
                )
                .fix(format!(
                    "create it (examples in /usr/share/doc/smsotp/examples/), mode 0600, owner root: {what}"
                )),
            );
            return false;
        }
    };
    if let Err(e) = perms::check(&real, role) {
        out.push(
            Finding::new(
                "config.permissions",
                Severity::Error,
                shown.display().to_string(),
                e.problem(),
            )
            .fix(e.fix()),
        );
        return false;
    }
    // Beyond the daemon's rule: it accepts a config or users file anyone
    // can read (nothing in them lets a reader log in), but no local user
    // needs the provider setup or everyone's phone number.
    let mode = meta.mode() & 0o7777;
    if let (Some(what), Some(Who::Everyone)) = (what, perms::readers(mode, meta.gid())) {
        out.push(
            Finding::new(
                "config.permissions",
                Severity::Error,
                shown.display().to_string(),
                format!("mode {mode:04o}: every local user can read {what}"),
            )
            .fix(format!("chmod 0600 {}", shown.display())),
        );
        return false;
    }
    true
}

/// Checks the daemon config, the users file and every other file the
/// config names (credential and CA files, the outbox, the store); returns
/// the parsed config.
pub fn config(
    host: &Host,
    config: &Path,
    out: &mut Vec<Finding>,
) -> Option<smsotp_config::DaemonConfig> {
    let config_ok = trusted_file(
        host,
        config,
        Role::Config,
        Some("the daemon config (provider tokens)"),
        out,
    );
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
    let mut others_ok = true;
    for (path, role) in named_files(&parsed) {
        others_ok &= trusted_file(host, &path, role, None, out);
    }
    let users_shown = parsed.users_file.clone();
    let users_ok = trusted_file(
        host,
        &users_shown,
        Role::Users,
        Some("the users' phone numbers"),
        out,
    );
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
        } else if config_ok && others_ok {
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

/// The files besides the config and the users file that the daemon reads
/// or writes: credential files, CA files, outbox files and the store.
/// (systemd credentials live in the service's own directory at run time.)
fn named_files(config: &smsotp_config::DaemonConfig) -> Vec<(PathBuf, Role)> {
    let mut files = vec![(config.store.path.clone(), Role::Store)];
    for p in &config.providers {
        for s in p.secrets() {
            if let SecretSource::File(f) = &s.source {
                files.push((f.clone(), Role::Secret));
            }
        }
        if let Some(ca) = p.transport().and_then(|t| t.ca_file.as_ref()) {
            files.push((ca.clone(), Role::CaFile));
        }
        if let smsotp_config::ProviderConfig::Outbox(o) = p {
            files.push((o.path.clone(), Role::Outbox));
        }
    }
    if let Some(d) = &config.directory {
        if let Some(SecretSource::File(f)) = d.bind_password.as_ref().map(|s| &s.source) {
            files.push((f.clone(), Role::Secret));
        }
        files.extend(d.ca_file.iter().map(|ca| (ca.clone(), Role::CaFile)));
    }
    files
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    fn write(path: &Path, text: &str, mode: u32) {
        fs::write(path, text).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn files_the_config_names_get_the_daemons_rule() {
        let root = tempfile::tempdir().unwrap();
        let etc = root.path().join("etc/smsotp");
        fs::create_dir_all(&etc).unwrap();
        write(
            &etc.join("smsotpd.toml"),
            "users_file = \"/etc/smsotp/users.toml\"\n[[provider]]\ntype = \"twilio\"\n\
             account_sid = \"AC0123456789abcdef0123456789abcdef\"\n\
             auth_token_file = \"/etc/smsotp/tw.token\"\nfrom = \"+15005550006\"\n",
            0o600,
        );
        write(&etc.join("users.toml"), "[users]\n", 0o600);
        let token = etc.join("tw.token");
        write(&token, "tok\n", 0o602);
        let host = Host::new(Some(root.path()));
        let shown = Path::new("/etc/smsotp/smsotpd.toml");
        let mut out = Vec::new();
        config(&host, shown, &mut out);
        let f = out
            .iter()
            .find(|f| f.check == "config.permissions")
            .unwrap_or_else(|| panic!("no finding: {out:?}"));
        assert_eq!(f.subject, "/etc/smsotp/tw.token");
        assert!(
            f.message.ends_with(
                "is writable by everyone (mode 0602): any local user could replace a provider credential"
            ),
            "{}",
            f.message
        );
        assert_eq!(f.fix, Some(format!("chmod go-rwx {}", token.display())));
        assert!(!out.iter().any(|f| f.check == "config.ok"), "{out:?}");

        fs::set_permissions(&token, fs::Permissions::from_mode(0o600)).unwrap();
        let mut out = Vec::new();
        config(&host, shown, &mut out);
        assert!(out.iter().all(|f| f.check == "config.ok"), "{out:?}");
    }
}
