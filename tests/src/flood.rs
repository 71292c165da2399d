//! One non-blocking connect() + close() on a Unix socket, the step of a
//! connect flood: the `attacker` helper loops on it, and the hostile tests
//! use it to see whether a listen backlog is full (EAGAIN).

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The address of `path`, built once so a tight loop does no work but the
/// two system calls.
pub fn sockaddr(path: &Path) -> libc::sockaddr_un {
    // SAFETY: sockaddr_un is plain data; all zeroes is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = path.as_os_str().as_bytes();
    assert!(bytes.len() < addr.sun_path.len(), "socket path too long");
    for (dst, src) in addr.sun_path.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    addr
}

/// Connects without blocking and closes at once; 0 or the errno (EAGAIN:
/// the backlog is full, EACCES: the socket's mode keeps us out).
pub fn connect_once(addr: &libc::sockaddr_un) -> i32 {
    // SAFETY: plain system calls on a descriptor this function owns; the
    // address is a valid sockaddr_un of the given size.
    unsafe {
        let fd = libc::socket(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        );
        if fd < 0 {
            return *libc::__errno_location();
        }
        let rc = libc::connect(
            fd,
            (addr as *const libc::sockaddr_un).cast(),
            std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t,
        );
        let err = if rc == 0 {
            0
        } else {
            *libc::__errno_location()
        };
        libc::close(fd);
        err
    }
}
