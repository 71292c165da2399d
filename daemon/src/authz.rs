//! Who may ask for what, decided from the kernel's SO_PEERCRED and never
//! from anything the peer says about itself.

use smsotp_proto::ErrorKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub uid: u32,
    pub pid: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub kind: ErrorKind,
    pub message: &'static str,
}

/// Root (sshd, sudo, login, su) may act for any user. Anyone else at most
/// for their own login, and only when the config allows it (screen lockers
/// and other unprivileged PAM callers).
pub fn may_begin(peer: Peer, user: &str, allow_user_self: bool) -> Result<(), Refusal> {
    if peer.uid == 0 {
        return Ok(());
    }
    let own_name = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(peer.uid))
        .ok()
        .flatten()
        .map(|u| u.name);
    if own_name.as_deref() != Some(user) {
        return Err(Refusal {
            kind: ErrorKind::PermissionDenied,
            message: "not allowed to request a code for another user",
        });
    }
    if !allow_user_self {
        return Err(Refusal {
            kind: ErrorKind::PermissionDenied,
            message: "only root may request codes from this daemon (allow_user_self is off)",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_may_act_for_anyone() {
        assert!(may_begin(Peer { uid: 0, pid: None }, "alice", false).is_ok());
    }

    #[test]
    fn others_only_for_themselves_and_only_when_allowed() {
        // uid 0's name is "root" on every Linux system; use a non-root uid
        // that exists everywhere: nobody (65534).
        let nobody = Peer {
            uid: 65534,
            pid: None,
        };
        let name = nix::unistd::User::from_uid(65534.into())
            .unwrap()
            .unwrap()
            .name;
        assert_eq!(
            may_begin(nobody, "root", true).unwrap_err().message,
            "not allowed to request a code for another user"
        );
        assert!(may_begin(nobody, &name, false).is_err());
        assert!(may_begin(nobody, &name, true).is_ok());
        // An unknown uid is nobody's self.
        assert!(may_begin(
            Peer {
                uid: 4_000_000_000,
                pid: None
            },
            "x",
            true
        )
        .is_err());
    }
}
