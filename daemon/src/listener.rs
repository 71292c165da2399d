//! Binding the Unix sockets: refuse to steal a live daemon's socket, clean
//! up a stale one, and give each socket the mode its role needs before
//! anyone can connect to it.

use nix::sys::socket::{self, AddressFamily, Backlog, SockFlag, SockType, UnixAddr};
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use tokio::net::UnixListener;

/// Who may connect to a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// 0666: every local process may connect and is then authorised per
    /// request from SO_PEERCRED, so an unprivileged caller gets a clear
    /// refusal instead of a bare EACCES. Anyone can also fill its backlog
    /// and take its slots, which the per-uid cap and root's reserved
    /// slots bound.
    Public,
    /// 0600, root's: only root can connect, so no other user can fill its
    /// backlog or hold its connections. PAM (sshd, sudo, login) and root's
    /// smsotpctl use it.
    RootOnly,
}

impl Access {
    pub fn mode(self) -> u32 {
        match self {
            Access::Public => 0o666,
            Access::RootOnly => 0o600,
        }
    }

    /// For log lines.
    pub fn name(self) -> &'static str {
        match self {
            Access::Public => "public",
            Access::RootOnly => "root",
        }
    }
}

/// Binds `path` with the mode `access` asks for.
///
/// The mode is set between bind() and listen(): until listen() a connect
/// is refused, so there is no moment when the root socket is open to
/// others. The backlog is the most the kernel allows
/// (`net.core.somaxconn`, 4096 on current kernels), as tokio and std ask
/// for; a full backlog is now read as "busy" by the clients and denies.
pub fn bind(path: &Path, access: Access) -> io::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        if !dir.exists() {
            std::fs::create_dir_all(dir)?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
        }
    }
    remove_stale(path)?;
    let fd: OwnedFd = socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )?;
    socket::bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &UnixAddr::new(path)?)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(access.mode()))?;
    socket::listen(&fd, Backlog::MAXCONN)?;
    UnixListener::from_std(std::os::unix::net::UnixListener::from(fd))
}

/// A socket file nobody listens on is left over from a crash; a live one
/// belongs to another daemon; anything else is not ours to replace.
fn remove_stale(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("{} is in use by a running daemon", path.display()),
                ));
            }
            std::fs::remove_file(path)
        }
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{} exists and is not a socket; refusing to replace it",
                path.display()
            ),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[tokio::test]
    async fn each_socket_gets_its_mode_and_a_stale_one_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        for (name, access) in [("p.sock", Access::Public), ("r.sock", Access::RootOnly)] {
            let path = dir.path().join(name);
            drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
            let _listener = bind(&path, access).unwrap();
            let mode = std::fs::metadata(&path).unwrap().mode() & 0o777;
            assert_eq!(mode, access.mode(), "{name}");
            // A second daemon must not take a live socket over.
            let err = bind(&path, access).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        }
        assert_eq!(Access::RootOnly.mode(), 0o600);
    }
}
