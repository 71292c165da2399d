//! Opening the stream to the daemon, and what each way of failing means.
//!
//! `failmode=safe` lets a login through when the daemon is not there, so
//! "not there" must be something a local user cannot fake. Only two
//! answers of connect(2) qualify: ENOENT (no socket file; its directory is
//! root's) and ECONNREFUSED (a file, but nobody listening). Everything else
//! means a daemon is present but unusable right now, and denies: EAGAIN is
//! a listen backlog that anyone can fill with connect() + close() loops.

use crate::client::ClientError;
use socket2::{Domain, SockAddr, Socket, Type};
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

/// Connects within `timeout` and checks who is listening.
///
/// The connect blocks, bounded by SO_SNDTIMEO, instead of polling a
/// non-blocking one: on a Unix socket a full backlog makes a non-blocking
/// connect fail at once, while a blocking one waits for the daemon to
/// accept and so gets its turn during a flood.
pub(crate) fn open(path: &Path, timeout: Duration) -> Result<Socket, ClientError> {
    let shown = || path.display().to_string();
    let other = |source| ClientError::Connect {
        path: shown(),
        source,
    };
    let addr = SockAddr::unix(path).map_err(other)?;
    let socket = Socket::new(Domain::UNIX, Type::STREAM.cloexec(), None).map_err(other)?;
    let deadline = Instant::now() + timeout;
    loop {
        let left = at_least_a_millisecond(deadline).ok_or_else(|| ClientError::Backlog {
            path: shown(),
            waited: timeout,
        })?;
        socket.set_write_timeout(Some(left)).map_err(other)?;
        match socket.connect(&addr) {
            Ok(()) => break,
            Err(e) => match e.raw_os_error() {
                // A signal to the host process (sshd's SIGCHLD): the
                // connection was not made, so asking again is safe.
                Some(libc::EINTR) => continue,
                Some(libc::ENOENT) | Some(libc::ECONNREFUSED) => {
                    return Err(ClientError::Absent {
                        path: shown(),
                        source: e,
                    })
                }
                Some(libc::EAGAIN) => {
                    return Err(ClientError::Backlog {
                        path: shown(),
                        waited: timeout,
                    })
                }
                _ => return Err(other(e)),
            },
        }
    }
    check_server(&socket, path)?;
    Ok(socket)
}

/// The time left before `deadline`, never below a millisecond: a timeout
/// that rounds to zero microseconds would mean "no timeout at all" to
/// SO_SNDTIMEO and SO_RCVTIMEO. `None` once the deadline has passed.
pub(crate) fn at_least_a_millisecond(deadline: Instant) -> Option<Duration> {
    let left = deadline.checked_duration_since(Instant::now())?;
    (!left.is_zero()).then(|| left.max(Duration::from_millis(1)))
}

/// The daemon runs as root; anything else on the socket could answer
/// "verified" to any code. A server running as our own uid is accepted
/// too: it can do nothing we cannot do ourselves (and an unprivileged
/// developer's in-process test server is one).
fn check_server(socket: &Socket, path: &Path) -> Result<(), ClientError> {
    let uid = peer_uid(socket).map_err(|source| ClientError::Connect {
        path: path.display().to_string(),
        source,
    })?;
    if uid == 0 || uid == crate::sockets::euid() {
        Ok(())
    } else {
        Err(ClientError::NotRoot {
            path: path.display().to_string(),
            uid,
        })
    }
}

/// SO_PEERCRED of a connected Unix socket: for the client side, the
/// credentials of whoever called listen() on the server side.
fn peer_uid(socket: &Socket) -> io::Result<u32> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: u32::MAX,
        gid: u32::MAX,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: the descriptor is open for the whole call; `cred` and `len`
    // are valid for writes of the sizes given.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(cred.uid)
}
