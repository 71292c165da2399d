//! systemd socket activation (`smsotpd.socket`): which passed descriptor
//! is the public socket and which the root one, told apart by the path
//! each is bound to (getsockname) against the config. One descriptor whose
//! path matches neither is the public socket, as units written before the
//! root socket existed pass it; the daemon then binds the root socket
//! itself.

use std::io;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ActivationError {
    #[error("passed descriptor {fd} is not a listening Unix socket: {source}")]
    NotUnix { fd: i32, source: io::Error },
    #[error(
        "passed descriptor {fd} is bound to {path:?}, which is neither `socket` nor \
         `root_socket` of the config"
    )]
    Unknown { fd: i32, path: Option<PathBuf> },
    #[error("two passed descriptors are bound to {0}")]
    Twice(PathBuf),
    #[error("reading LISTEN_FDS: {0}")]
    Env(io::Error),
}

/// The sockets systemd passed; `None` where the daemon binds its own.
#[derive(Debug)]
pub struct Activated<L = UnixListener> {
    pub public: Option<L>,
    pub root: Option<L>,
}

impl<L> Activated<L> {
    pub fn any(&self) -> bool {
        self.public.is_some() || self.root.is_some()
    }
}

/// Takes the descriptors LISTEN_FDS names. Call before any thread exists:
/// reading them unsets the variables.
pub fn take(public: &Path, root: &Path) -> Result<Activated, ActivationError> {
    use std::os::fd::FromRawFd;
    let fds: Vec<i32> = sd_notify::listen_fds()
        .map_err(ActivationError::Env)?
        .collect();
    let mut passed = Vec::with_capacity(fds.len());
    for fd in fds {
        // SAFETY: systemd hands this process ownership of the fds it
        // passes, from 3 on; nothing else in the process has touched them.
        let listener = unsafe { UnixListener::from_raw_fd(fd) };
        // Fails unless the fd really is a Unix stream socket.
        let addr = listener
            .local_addr()
            .map_err(|source| ActivationError::NotUnix { fd, source })?;
        listener
            .set_nonblocking(true)
            .map_err(|source| ActivationError::NotUnix { fd, source })?;
        passed.push((fd, addr.as_pathname().map(Path::to_path_buf), listener));
    }
    sort(passed, public, root)
}

/// Puts each passed listener where its bound path says it belongs.
pub fn sort<L>(
    passed: Vec<(i32, Option<PathBuf>, L)>,
    public: &Path,
    root: &Path,
) -> Result<Activated<L>, ActivationError> {
    let only_one = passed.len() == 1;
    let mut out = Activated {
        public: None,
        root: None,
    };
    for (fd, path, listener) in passed {
        let slot = match path.as_deref() {
            Some(p) if p == root => &mut out.root,
            Some(p) if p == public => &mut out.public,
            _ if only_one => &mut out.public,
            _ => return Err(ActivationError::Unknown { fd, path }),
        };
        if slot.replace(listener).is_some() {
            return Err(ActivationError::Twice(path.unwrap_or_default()));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PUBLIC: &str = "/run/smsotp/smsotpd.sock";
    const ROOT: &str = "/run/smsotp/root.sock";

    fn sorted(passed: &[(i32, Option<&str>)]) -> Result<Activated<i32>, ActivationError> {
        let passed = passed
            .iter()
            .map(|&(fd, p)| (fd, p.map(PathBuf::from), fd))
            .collect();
        sort(passed, Path::new(PUBLIC), Path::new(ROOT))
    }

    #[test]
    fn two_sockets_by_their_paths_in_any_order() {
        let a = sorted(&[(3, Some(ROOT)), (4, Some(PUBLIC))]).unwrap();
        assert_eq!((a.public, a.root), (Some(4), Some(3)));
        let a = sorted(&[(3, Some(PUBLIC)), (4, Some(ROOT))]).unwrap();
        assert_eq!((a.public, a.root), (Some(3), Some(4)));
    }

    #[test]
    fn one_socket_from_an_old_unit_is_the_public_one() {
        let a = sorted(&[(3, Some("/run/elsewhere.sock"))]).unwrap();
        assert_eq!((a.public, a.root), (Some(3), None));
        let a = sorted(&[(3, Some(ROOT))]).unwrap();
        assert_eq!((a.public, a.root), (None, Some(3)));
        let a = sorted(&[]).unwrap();
        assert!(!a.any());
    }

    #[test]
    fn unknown_or_repeated_paths_are_refused() {
        assert!(matches!(
            sorted(&[(3, Some(PUBLIC)), (4, Some("/x.sock"))]),
            Err(ActivationError::Unknown { fd: 4, .. })
        ));
        assert!(matches!(
            sorted(&[(3, Some(PUBLIC)), (4, Some(PUBLIC))]),
            Err(ActivationError::Twice(_))
        ));
        assert!(matches!(
            sorted(&[(3, Some(ROOT)), (4, None)]),
            Err(ActivationError::Unknown { fd: 4, path: None })
        ));
    }
}
