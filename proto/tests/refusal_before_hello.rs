//! A daemon at its connection cap answers `Busy` and hangs up without
//! reading. The client must report that refusal, not a broken pipe (which
//! was once read as "unreachable" and let failmode=safe through), and must not
//! raise SIGPIPE in its host process (sshd, sudo) while finding out.

use smsotp_proto::frame::write_frame;
use smsotp_proto::{Client, ClientError, ErrorKind, Response};
use std::os::unix::net::UnixListener;
use std::time::Duration;

#[test]
fn busy_refusal_wins_over_broken_pipe_and_no_sigpipe() {
    // The host process's default: SIGPIPE kills. (Rust binaries ignore it,
    // sshd's children may not.) This file is its own test process.
    // SAFETY: setting a signal disposition to the default is always sound.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let dir = tempfile_dir();
    let path = dir.join("s.sock");
    let listener = UnixListener::bind(&path).unwrap();
    const ROUNDS: usize = 200;
    let server = std::thread::spawn(move || {
        for _ in 0..ROUNDS {
            let (mut s, _) = listener.accept().unwrap();
            write_frame(
                &mut s,
                &Response::Error {
                    kind: ErrorKind::Busy,
                    message: "busy".into(),
                },
            )
            .unwrap();
            // Hang up at once, unread hello and all: the client's write
            // then races the close.
            drop(s);
        }
    });
    for round in 0..ROUNDS {
        let err = Client::connect(&path, Duration::from_secs(5), "t")
            .err()
            .unwrap();
        assert!(
            matches!(&err, ClientError::Refused(m) if m == "busy"),
            "round {round}: {err}"
        );
        assert!(!err.daemon_absent());
    }
    server.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("smsotp-proto-busy-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
