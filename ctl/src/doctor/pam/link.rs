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
    pub sockets: Vec<PathBuf>,
    pub policy: &'a Policy,
}

impl<'a> DaemonSide<'a> {
    pub fn new(cfg: &'a DaemonConfig) -> DaemonSide<'a> {
        DaemonSide {
            // Every socket the daemon listens on; a module line may name any.
            sockets: vec![cfg.socket.clone()],
            policy: &cfg.policy,
        }
    }
}

/// The socket a module line talks to: its `socket=`, or the module's
/// default (pam-module/src/options.rs uses the same constant).
fn module_socket(entry: &Entry) -> &Path {
    Path::new(entry.arg("socket").unwrap_or(smsotp_config::DEFAULT_SOCKET))
}

/// An error when the line's socket is none of `daemon_sockets`: the module
/// would reach no daemon (every login fails, or with failmode=safe needs no
/// code) or another daemon, with other users and another policy.
pub fn socket_mismatch(entry: &Entry, daemon_sockets: &[PathBuf]) -> Option<Finding> {
    let socket = module_socket(entry);
    if daemon_sockets.iter().any(|s| s == socket) {
        return None;
    }
    let listed = daemon_sockets
        .iter()
        .map(|s| s.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    Some(
        Finding::new(
            "pam.socket-mismatch",
            Severity::Error,
            entry.origin.clone(),
            format!(
                "pam_smsotp.so talks to {} but smsotpd listens on {listed}: the module reaches no \
                 daemon (or another one)",
                socket.display()
            ),
        )
        .fix(format!(
            "write `socket={listed}` on the line (or drop socket= when the daemon uses the default), \
             or set `socket` in the daemon config to match"
        )),
    )
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
        let daemon = [PathBuf::from("/run/smsotp/smsotpd.sock")];
        assert!(socket_mismatch(&line("auth required pam_smsotp.so"), &daemon).is_none());
        let e = line("auth required pam_smsotp.so socket=/run/smsotp/smsotpd.sock");
        assert!(socket_mismatch(&e, &daemon).is_none());
        let e = line("auth required pam_smsotp.so socket=/tmp/other.sock");
        let f = socket_mismatch(&e, &daemon).expect("a mismatch");
        assert_eq!(
            (f.check, f.severity),
            ("pam.socket-mismatch", Severity::Error)
        );
        let elsewhere = [PathBuf::from("/srv/smsotpd.sock")];
        assert!(
            socket_mismatch(&line("auth required pam_smsotp.so"), &elsewhere).is_some(),
            "no socket= means the module's default"
        );
        let both = [PathBuf::from("/a.sock"), PathBuf::from("/tmp/other.sock")];
        assert!(
            socket_mismatch(&e, &both).is_none(),
            "any daemon socket will do"
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
