//! The server in-process on a temporary socket: the protocol edges that the
//! PAM end-to-end tests do not reach (version mismatch, ordering, the
//! connection cap, shutdown).

// The shared config writer (the rest of the login fixture serves other files).
mod flow_support;

use smsotp_proto::frame::{read_frame, write_frame};
use smsotp_proto::{BeginRequest, Client, ErrorKind, Request, Response, Secret, PROTOCOL_VERSION};
use smsotpd::state::{Runtime, State};
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

struct Fixture {
    dir: tempfile::TempDir,
    socket: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Fixture {
    fn start(extra: &str) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("smsotpd.sock");
        let config_path =
            flow_support::write_config(dir.path(), "alice = \"+15551234567\"\n", extra);
        let runtime = Runtime::load(&config_path).unwrap();
        let limits = smsotpd::server::Limits {
            max_connections: runtime.config.max_connections,
            max_connections_per_user: runtime.config.max_connections_per_user,
        };
        let store = smsotpd::store::SqliteStore::open(&runtime.config.store).unwrap();
        let state = State::new(config_path, runtime, std::sync::Arc::new(store));
        let listener_path = socket.clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let public =
                    smsotpd::listener::bind(&listener_path, smsotpd::listener::Access::Public)
                        .unwrap();
                ready_tx.send(()).unwrap();
                let listeners = smsotpd::server::Listeners { public, root: None };
                smsotpd::server::run(listeners, state, limits, async {
                    let _ = rx.await;
                })
                .await;
            });
        });
        ready_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        Fixture {
            dir,
            socket,
            stop: Some(tx),
            thread: Some(thread),
        }
    }

    fn client(&self) -> Client {
        Client::connect(&self.socket, Duration::from_secs(5), "test").unwrap()
    }

    fn outbox_codes(&self) -> Vec<String> {
        let text =
            std::fs::read_to_string(self.dir.path().join("outbox.jsonl")).unwrap_or_default();
        text.lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                flow_support::code_in(v["body"].as_str().unwrap())
            })
            .collect()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn begin(user: &str) -> Request {
    Request::Begin(BeginRequest {
        user: user.into(),
        service: "test".into(),
        rhost: None,
        tty: None,
        command: None,
    })
}

fn raw(path: &Path) -> UnixStream {
    let s = UnixStream::connect(path).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

#[test]
fn full_flow_in_process() {
    let f = Fixture::start("");
    let mut c = f.client();
    let Response::Challenge(info) = c.call(&begin("alice")).unwrap() else {
        panic!("no challenge")
    };
    assert_eq!(info.masked_mobile.as_str(), "*******4567");
    assert_eq!(info.code_length, 6);
    let code = f.outbox_codes().pop().unwrap();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    assert_eq!(
        c.call(&Request::Verify {
            code: Secret::new(wrong)
        })
        .unwrap(),
        Response::Wrong { attempts_left: 2 }
    );
    assert_eq!(
        c.call(&Request::Verify {
            code: Secret::new(code)
        })
        .unwrap(),
        Response::Verified {
            method: smsotp_proto::VerifyMethod::Sms,
            backup_codes_left: None
        }
    );
}

#[test]
fn other_protocol_version_is_refused_clearly() {
    let f = Fixture::start("");
    let mut s = raw(&f.socket);
    write_frame(
        &mut s,
        &Request::Hello {
            version: PROTOCOL_VERSION + 1,
            client: "future".into(),
        },
    )
    .unwrap();
    let resp: Response = read_frame(&mut s).unwrap();
    assert!(
        matches!(
            resp,
            Response::Error {
                kind: ErrorKind::UnsupportedVersion,
                ..
            }
        ),
        "{resp:?}"
    );
}

#[test]
fn begin_before_hello_is_refused() {
    let f = Fixture::start("");
    let mut s = raw(&f.socket);
    write_frame(&mut s, &begin("alice")).unwrap();
    let resp: Response = read_frame(&mut s).unwrap();
    assert!(
        matches!(
            resp,
            Response::Error {
                kind: ErrorKind::BadRequest,
                ..
            }
        ),
        "{resp:?}"
    );
    assert!(f.outbox_codes().is_empty(), "no SMS without a handshake");
}

#[test]
fn verify_without_challenge_and_second_begin_are_refused() {
    let f = Fixture::start("");
    let mut c = f.client();
    let r = c
        .call(&Request::Verify {
            code: Secret::new("123456"),
        })
        .unwrap();
    assert!(
        matches!(
            r,
            Response::Error {
                kind: ErrorKind::BadRequest,
                ..
            }
        ),
        "{r:?}"
    );
    let mut c = f.client();
    assert!(matches!(
        c.call(&begin("alice")).unwrap(),
        Response::Challenge(_)
    ));
    let r = c.call(&begin("alice")).unwrap();
    assert!(
        matches!(
            r,
            Response::Error {
                kind: ErrorKind::BadRequest,
                ..
            }
        ),
        "{r:?}"
    );
}

#[test]
fn connection_cap_answers_busy_and_frees_up() {
    let f = Fixture::start("max_connections = 2");
    let held: Vec<Client> = (0..2).map(|_| f.client()).collect();
    let err = Client::connect(&f.socket, Duration::from_secs(5), "test")
        .err()
        .unwrap();
    assert!(
        !err.daemon_absent(),
        "busy must not look like 'absent': {err}"
    );
    assert!(err.to_string().contains("busy"), "{err}");
    drop(held);
    // The permits come back once the sessions notice the closed sockets.
    let mut ok = false;
    for _ in 0..50 {
        if Client::connect(&f.socket, Duration::from_secs(5), "test").is_ok() {
            ok = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(ok, "the cap never freed up");
}

#[test]
fn oversized_header_gets_an_error_and_the_daemon_keeps_serving() {
    let f = Fixture::start("");
    let mut s = raw(&f.socket);
    s.write_all(&u32::MAX.to_be_bytes()).unwrap();
    let resp: Response = read_frame(&mut s).unwrap();
    assert!(
        matches!(
            resp,
            Response::Error {
                kind: ErrorKind::BadRequest,
                ..
            }
        ),
        "{resp:?}"
    );
    let mut c = f.client();
    assert!(matches!(
        c.call(&begin("alice")).unwrap(),
        Response::Challenge(_)
    ));
}

#[test]
fn unknown_user_gets_no_mobile() {
    let f = Fixture::start("");
    let mut c = f.client();
    assert_eq!(c.call(&begin("mallory")).unwrap(), Response::NoMobile);
    assert!(f.outbox_codes().is_empty());
}
