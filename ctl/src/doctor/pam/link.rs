//! A stack against the daemon it relies on: does the module line talk to
//! the socket smsotpd listens on, and which policy section does the service
//! get.

use super::stack::Entry;
use crate::doctor::{Finding, Severity};
use smsotp_config::{DaemonConfig, Policy};
use std::path::{Path, PathBuf};

/// What doctor read of the daemon's config, for the checks that compare a
/// stack with it.
pub struct DaemonSide<'a> {
    /// The root-only socket first, then the public one.
    pub sockets: Vec<PathBuf>,
    pub policy: &'a Policy,
}

impl<'a> DaemonSide<'a> {
    pub fn new(cfg: &'a DaemonConfig) -> DaemonSide<'a> {
        DaemonSide {
            // Every socket the daemon listens on; a module line may name any.
            sockets: vec![cfg.root_socket.clone(), cfg.socket.clone()],
            policy: &cfg.policy,
        }
    }
}

/// The sockets a module line tries, in order: its `socket=`, or the
/// defaults of a module running as root (sshd, sudo, login, su), the same
/// list pam-module/src/options.rs uses.
fn module_sockets(entry: &Entry) -> Vec<&Path> {
    match entry.arg("socket") {
        Some(s) => vec![Path::new(s)],
        None => smsotp_proto::sockets::defaults_for(0)
            .iter()
            .map(Path::new)
            .collect(),
    }
}

/// An error when the line reaches none of `daemon_sockets`: the module
/// would reach no daemon (every login fails, or with failmode=safe needs no
/// code) or another daemon, with other users and another policy. A warning
/// when it reaches only the public one (the last of `daemon_sockets`): any
/// local user can fill that socket's queue, and root's logins there are
/// then refused as busy, where the root-only socket keeps serving them.
pub fn socket_mismatch(entry: &Entry, daemon_sockets: &[PathBuf]) -> Option<Finding> {
    let tried = module_sockets(entry);
    let reached = tried
        .iter()
        .find(|t| daemon_sockets.iter().any(|s| s == **t));
    let listed = daemon_sockets
        .iter()
        .map(|s| s.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    match reached {
        Some(socket)
            if daemon_sockets.len() > 1 && daemon_sockets.last().is_some_and(|p| p == *socket) =>
        {
            Some(
                Finding::new(
                    "pam.socket-public",
                    Severity::Warning,
                    entry.origin.clone(),
                    format!(
                    "pam_smsotp.so talks to the public socket {}: any local user can flood it, and \
                     logins are then refused as busy",
                    socket.display()
                ),
                )
                .fix(format!(
                    "write `socket={}` on the line (root-only; or drop socket= to use the default)",
                    daemon_sockets[0].display()
                )),
            )
        }
        Some(_) => None,
        None => Some(
            Finding::new(
                "pam.socket-mismatch",
                Severity::Error,
                entry.origin.clone(),
                format!(
                    "pam_smsotp.so talks to {} but smsotpd listens on {listed}: the module reaches \
                     no daemon (or another one)",
                    tried
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(" or ")
                ),
            )
            .fix(format!(
                "write `socket={}` on the line (or drop socket= when the daemon uses the default), \
                 or set `root_socket` in the daemon config to match",
                daemon_sockets[0].display()
            )),
        ),
    }
}

/// Which policy section a service that loads the module gets.
pub fn policy_section(service: &str, policy: &Policy, origin: &str) -> Finding {
    let section = match policy.section_for(service) {
        Some(name) if name == service => format!("[service.{name}]"),
        Some(name) => format!("[service.{name}] (the `{name}` family)"),
        None => "[policy] (no [service.NAME] matches)".into(),
    };
    // Info either way: turning codes off for most services is a normal
    // setup (`[policy] enabled = false`, `[service.sshd] enabled = true`),
    // and a warning per intended skip would teach people to ignore warnings.
    let off = if policy.for_service(service).enabled {
        ""
    } else {
        ", which has enabled = false: the module skips its logins (password only)"
    };
    Finding::new(
        "pam.policy",
        Severity::Info,
        origin,
        format!("`{service}` gets {section}{off}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::pam::parse::parse;

    fn line(text: &str) -> Entry {
        let l = parse(text).remove(0);
        Entry {
            origin: "t:1".into(),
            via: Vec::new(),
            level: 0,
            control: l.control,
            module: l.module,
            args: l.args,
            dash: false,
        }
    }

    #[test]
    fn socket_lines_must_name_a_daemon_socket() {
        let daemon = [
            PathBuf::from("/run/smsotp/root.sock"),
            PathBuf::from("/run/smsotp/smsotpd.sock"),
        ];
        assert!(socket_mismatch(&line("auth required pam_smsotp.so"), &daemon).is_none());
        let e = line("auth required pam_smsotp.so socket=/run/smsotp/root.sock");
        assert!(socket_mismatch(&e, &daemon).is_none());
        let public = line("auth required pam_smsotp.so socket=/run/smsotp/smsotpd.sock");
        let f = socket_mismatch(&public, &daemon).expect("a warning");
        assert_eq!(
            (f.check, f.severity),
            ("pam.socket-public", Severity::Warning)
        );
        let e = line("auth required pam_smsotp.so socket=/tmp/other.sock");
        let f = socket_mismatch(&e, &daemon).expect("a mismatch");
        assert_eq!(
            (f.check, f.severity),
            ("pam.socket-mismatch", Severity::Error)
        );
        let elsewhere = [
            PathBuf::from("/srv/root.sock"),
            PathBuf::from("/srv/smsotpd.sock"),
        ];
        assert!(
            socket_mismatch(&line("auth required pam_smsotp.so"), &elsewhere).is_some(),
            "no socket= means the module's defaults"
        );
        // A daemon with a moved root socket but the default public one: the
        // module falls back to the public socket, which works but floods.
        let moved = [
            PathBuf::from("/srv/root.sock"),
            PathBuf::from("/run/smsotp/smsotpd.sock"),
        ];
        let f = socket_mismatch(&line("auth required pam_smsotp.so"), &moved).expect("warning");
        assert_eq!(f.check, "pam.socket-public");
        let both = [PathBuf::from("/a.sock"), PathBuf::from("/tmp/other.sock")];
        assert_eq!(
            socket_mismatch(&e, &both).map(|f| f.check),
            Some("pam.socket-public"),
            "any daemon socket is reached; the public one warns"
        );
    }

    #[test]
    fn policy_section_names_the_family() {
        let text = "[policy]\nenabled = false\n[service.sudo]\nenabled = true\n";
        let c = smsotp_config::parse(Path::new("x"), text).unwrap();
        let f = policy_section("sudo-i", &c.policy, "o");
        assert_eq!(f.severity, Severity::Info);
        assert!(
            f.message.contains("[service.sudo] (the `sudo` family)"),
            "{}",
            f.message
        );
        let f = policy_section("su-l", &c.policy, "o");
        assert!(f.message.contains("[policy]"), "{}", f.message);
        assert!(f.message.contains("enabled = false"), "{}", f.message);
    }
}
