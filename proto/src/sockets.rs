//! Where the daemon listens by default, and which of its two sockets a
//! client picks when it is not told.
//!
//! The public socket (0666) serves everyone and is authorised per request
//! from SO_PEERCRED; any local user can connect to it, and so can flood its
//! listen backlog or take connection slots. The root socket (0600, root's)
//! cannot even be connected to by anyone else, so root's callers (PAM
//! inside sshd, sudo, login; root's smsotpctl) use it.

pub const DEFAULT_SOCKET: &str = "/run/smsotp/smsotpd.sock";
pub const DEFAULT_ROOT_SOCKET: &str = "/run/smsotp/root.sock";

/// The default sockets for a client running with effective uid `euid`, in
/// the order to try them (see [`crate::Client::connect_any`]). Root falls
/// back to the public socket only where the root socket does not exist (a
/// daemon older than the client): nobody but root can remove it, so no
/// local user can push root onto the socket they can flood.
pub fn defaults_for(euid: u32) -> &'static [&'static str] {
    if euid == 0 {
        &[DEFAULT_ROOT_SOCKET, DEFAULT_SOCKET]
    } else {
        &[DEFAULT_SOCKET]
    }
}

/// The effective uid of this process.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_gets_the_root_only_socket() {
        assert_eq!(
            defaults_for(0),
            ["/run/smsotp/root.sock", "/run/smsotp/smsotpd.sock"]
        );
        assert_eq!(defaults_for(1000), ["/run/smsotp/smsotpd.sock"]);
        assert_eq!(defaults_for(65534), [DEFAULT_SOCKET]);
    }
}
