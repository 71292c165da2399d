//! How the client reads each way a connect can fail. Only "no daemon"
//! (ENOENT, ECONNREFUSED) may be `daemon_absent`, the one case
//! `failmode=safe` waves through; a full backlog, a hang-up before the
//! hello answer and a server that is not root all deny.

use smsotp_proto::frame::{read_frame, write_frame};
use smsotp_proto::{Client, ClientError, Request, Response, PROTOCOL_VERSION};
use socket2::{Domain, SockAddr, Socket, Type};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn temp_socket(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("smsotp-connect-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("s.sock")
}

/// A listener whose backlog holds one connection, already taken: the next
/// connect finds it full, as under a connect flood.
fn full_backlog(path: &PathBuf) -> (Socket, Socket) {
    let listener = Socket::new(Domain::UNIX, Type::STREAM, None).unwrap();
    listener.bind(&SockAddr::unix(path).unwrap()).unwrap();
    // Linux lets backlog + 1 connections wait: with 0, one.
    listener.listen(0).unwrap();
    let queued = Socket::new(Domain::UNIX, Type::STREAM, None).unwrap();
    queued.connect(&SockAddr::unix(path).unwrap()).unwrap();
    (listener, queued)
}

#[test]
fn stale_socket_nobody_listening_is_absent() {
    let path = temp_socket("stale");
    drop(UnixListener::bind(&path).unwrap());
    let err = Client::connect(&path, Duration::from_secs(1), "t")
        .err()
        .unwrap();
    assert!(matches!(err, ClientError::Absent { .. }), "{err}");
    assert!(err.daemon_absent());
}

#[test]
fn a_backlog_full_for_the_whole_deadline_is_busy_not_absent() {
    let path = temp_socket("full");
    let (_listener, _queued) = full_backlog(&path);
    let started = Instant::now();
    let err = Client::connect(&path, Duration::from_millis(400), "t")
        .err()
        .unwrap();
    let took = started.elapsed();
    eprintln!("full backlog: {err} after {took:?}");
    assert!(matches!(err, ClientError::Backlog { .. }), "{err}");
    assert!(!err.daemon_absent());
    // It waited for a turn, bounded by the deadline.
    assert!(
        took >= Duration::from_millis(350) && took < Duration::from_secs(2),
        "took {took:?}"
    );
}

#[test]
fn a_backlog_that_drains_within_the_deadline_lets_the_client_in() {
    let path = temp_socket("drain");
    let (listener, queued) = full_backlog(&path);
    let server = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        // The flood's connection, then ours.
        drop(listener.accept().unwrap());
        drop(queued);
        let (ours, _) = listener.accept().unwrap();
        let mut ours = std::os::unix::net::UnixStream::from(std::os::fd::OwnedFd::from(ours));
        let hello: Request = read_frame(&mut ours).unwrap();
        assert!(matches!(hello, Request::Hello { .. }));
        write_frame(
            &mut ours,
            &Response::Hello {
                version: PROTOCOL_VERSION,
                server: "drained".into(),
            },
        )
        .unwrap();
    });
    let started = Instant::now();
    let client = Client::connect(&path, Duration::from_secs(3), "t").unwrap();
    eprintln!("in after {:?}", started.elapsed());
    assert_eq!(client.server(), "drained");
    server.join().unwrap();
}

#[test]
fn a_hang_up_before_the_hello_answer_is_not_absent() {
    let path = temp_socket("hangup");
    let listener = UnixListener::bind(&path).unwrap();
    let server = std::thread::spawn(move || drop(listener.accept().unwrap()));
    let err = Client::connect(&path, Duration::from_secs(2), "t")
        .err()
        .unwrap();
    server.join().unwrap();
    assert!(!err.daemon_absent(), "{err}");
}

#[test]
fn a_server_that_is_neither_root_nor_us_is_refused_before_the_hello() {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root to listen as another uid");
        return;
    }
    let path = temp_socket("notroot");
    let listener = Socket::new(Domain::UNIX, Type::STREAM, None).unwrap();
    listener.bind(&SockAddr::unix(&path).unwrap()).unwrap();
    let fd = listener.as_raw_fd();
    // The credentials a client sees are those of whoever called listen():
    // a child that drops to uid 65534 first, then listens and waits. Only
    // async-signal-safe calls between fork and _exit.
    // SAFETY: see above; the parent reaps the child by pid below.
    let child = unsafe { libc::fork() };
    assert!(child >= 0, "fork failed");
    if child == 0 {
        // SAFETY: plain system calls in the forked child.
        unsafe {
            if libc::setgid(65534) != 0 || libc::setuid(65534) != 0 || libc::listen(fd, 8) != 0 {
                libc::_exit(1);
            }
            libc::sleep(10);
            libc::_exit(0);
        }
    }
    drop(listener);
    let mut result = None;
    for _ in 0..100 {
        match Client::connect(&path, Duration::from_millis(500), "t") {
            // Not listening yet.
            Err(ClientError::Absent { .. }) => std::thread::sleep(Duration::from_millis(10)),
            other => {
                result = Some(other);
                break;
            }
        }
    }
    // SAFETY: our own child, by pid.
    unsafe {
        libc::kill(child, libc::SIGKILL);
        libc::waitpid(child, std::ptr::null_mut(), 0);
    }
    let err = result.expect("the child listened").err().expect("refused");
    assert!(
        matches!(err, ClientError::NotRoot { uid: 65534, .. }),
        "{err}"
    );
    assert!(!err.daemon_absent());
}

#[test]
fn connect_any_moves_on_only_past_an_absent_daemon() {
    let missing = temp_socket("any-missing");
    let busy = temp_socket("any-busy");
    let (_listener, _queued) = full_backlog(&busy);
    let good = temp_socket("any-good");
    let listener = UnixListener::bind(&good).unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let _: Request = read_frame(&mut s).unwrap();
        write_frame(
            &mut s,
            &Response::Hello {
                version: PROTOCOL_VERSION,
                server: "good".into(),
            },
        )
        .unwrap();
    });
    let timeout = Duration::from_millis(300);
    let c = Client::connect_any(&[&missing, &good], timeout, "t").unwrap();
    assert_eq!(c.server(), "good");
    server.join().unwrap();
    // A busy daemon is an answer: falling through to another socket would
    // let a flood steer the client.
    let err = Client::connect_any(&[&busy, &good], timeout, "t")
        .err()
        .unwrap();
    assert!(matches!(err, ClientError::Backlog { .. }), "{err}");
    let err = Client::connect_any(&[&missing], timeout, "t")
        .err()
        .unwrap();
    assert!(err.daemon_absent(), "{err}");
}

#[test]
fn waiting_in_the_backlog_and_the_hello_share_one_deadline() {
    let path = temp_socket("shared");
    let (listener, queued) = full_backlog(&path);
    let server = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        drop(listener.accept().unwrap());
        drop(queued);
        // Ours, never answered.
        let held = listener.accept().unwrap();
        std::thread::sleep(Duration::from_millis(900));
        drop(held);
    });
    let started = Instant::now();
    let err = Client::connect(&path, Duration::from_millis(600), "t")
        .err()
        .unwrap();
    let took = started.elapsed();
    eprintln!("{err} after {took:?}");
    assert!(matches!(err, ClientError::Timeout(_)), "{err}");
    assert!(
        took >= Duration::from_millis(550) && took < Duration::from_millis(850),
        "took {took:?}"
    );
    server.join().unwrap();
}
