//! Blocking client for the PAM module and the CLI. Every socket operation
//! runs under a deadline: a stalled daemon must never hold sshd past its
//! LoginGraceTime. No threads, no async runtime.

use crate::connect::{at_least_a_millisecond, open};
use crate::frame::{decode, encode, payload_len, FrameError};
use crate::message::{ErrorKind, Request, Response};
use crate::{MIN_PROTOCOL_VERSION, PROTOCOL_VERSION};
use socket2::Socket;
use std::io::{self, Read};
use std::path::Path;
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No daemon: no socket file, or nobody listening on it. The only
    /// failure `failmode=safe` may wave through (see `connect.rs`).
    #[error("no daemon at {path}: {source}")]
    Absent { path: String, source: io::Error },
    /// The daemon's listen backlog stayed full for the whole deadline: it
    /// is there, and somebody may be flooding it.
    #[error("the daemon at {path} is busy: its listen queue stayed full for {waited:?}")]
    Backlog { path: String, waited: Duration },
    /// Any other connect failure: something is there that we cannot use.
    #[error("cannot connect to {path}: {source}")]
    Connect { path: String, source: io::Error },
    /// The process listening on the socket is neither root nor us.
    #[error("the process listening on {path} runs as uid {uid}, not root; refusing to talk to it")]
    NotRoot { path: String, uid: u32 },
    #[error("the daemon did not answer within {0:?}")]
    Timeout(Duration),
    #[error("protocol error: {0}")]
    Frame(#[from] FrameError),
    #[error("invalid request: {0}")]
    Invalid(#[from] crate::ValidationError),
    #[error("the daemon speaks protocol {server}, this client speaks {PROTOCOL_VERSION}")]
    VersionMismatch { server: u32 },
    #[error("the daemon refused the connection: {0}")]
    Refused(String),
    #[error("unexpected reply to hello")]
    UnexpectedHello,
}

impl ClientError {
    /// True only when no daemon is there at all: the one case
    /// `failmode=safe` is allowed to wave through. A daemon that is silent
    /// at the hello, hangs up before answering it, or has a full backlog is
    /// present, and any local user can make it look that way.
    pub fn daemon_absent(&self) -> bool {
        matches!(self, ClientError::Absent { .. })
    }
}

pub struct Client {
    /// Writes pass MSG_NOSIGNAL explicitly: inside sshd or sudo a write to
    /// a closed socket must never raise SIGPIPE in the host process, whose
    /// disposition is not ours to assume.
    stream: Socket,
    timeout: Duration,
    server: String,
    /// The version both sides speak on this connection.
    version: u32,
}

impl Client {
    /// Connects (waiting for room in a full backlog), checks that root is
    /// listening, and exchanges hellos, all within `timeout`.
    pub fn connect(
        path: &Path,
        timeout: Duration,
        client_name: &str,
    ) -> Result<Client, ClientError> {
        let deadline = Instant::now() + timeout;
        match Client::connect_as(path, timeout, deadline, client_name, PROTOCOL_VERSION) {
            // A daemon older than this client refuses its version outright;
            // the older protocol is a subset of ours, so ask again in it.
            Err(ClientError::VersionMismatch { server: 0 }) => {
                Client::connect_as(path, timeout, deadline, client_name, MIN_PROTOCOL_VERSION)
            }
            done => done,
        }
    }

    fn connect_as(
        path: &Path,
        timeout: Duration,
        deadline: Instant,
        client_name: &str,
        version: u32,
    ) -> Result<Client, ClientError> {
        let left = at_least_a_millisecond(deadline).ok_or(ClientError::Timeout(timeout))?;
        let socket = open(path, left)?;
        // The hello gets what the connect left of the deadline; later
        // requests get the whole timeout each.
        let left = at_least_a_millisecond(deadline).ok_or(ClientError::Timeout(timeout))?;
        let mut client = Client {
            stream: socket,
            timeout: left,
            server: String::new(),
            version,
        };
        let hello = client.call(&Request::Hello {
            version,
            client: client_name.to_string(),
        });
        client.timeout = timeout;
        let hello = hello.map_err(|e| match e {
            ClientError::Timeout(_) => ClientError::Timeout(timeout),
            e => e,
        })?;
        match hello {
            Response::Hello {
                version: answered,
                server,
            } if (MIN_PROTOCOL_VERSION..=version).contains(&answered) => {
                client.server = server;
                client.version = answered;
                Ok(client)
            }
            Response::Hello { version, .. } => {
                Err(ClientError::VersionMismatch { server: version })
            }
            Response::Error {
                kind: ErrorKind::UnsupportedVersion,
                ..
            } => Err(ClientError::VersionMismatch { server: 0 }),
            Response::Error { message, .. } => Err(ClientError::Refused(message)),
            _ => Err(ClientError::UnexpectedHello),
        }
    }

    /// Connects to the first of `paths` where a daemon is present: an
    /// absent one (no socket, nobody listening) moves on to the next path,
    /// any other failure is the answer. With no path at all, absent.
    pub fn connect_any<P: AsRef<Path>>(
        paths: &[P],
        timeout: Duration,
        client_name: &str,
    ) -> Result<Client, ClientError> {
        let mut last = ClientError::Absent {
            path: String::new(),
            source: io::Error::from(io::ErrorKind::NotFound),
        };
        for path in paths {
            match Client::connect(path.as_ref(), timeout, client_name) {
                Err(e) if e.daemon_absent() => last = e,
                done => return done,
            }
        }
        Err(last)
    }

    /// The protocol version agreed in the hello.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The daemon's self-description from its hello.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Sends one request and reads one response, both within the timeout.
    pub fn call(&mut self, req: &Request) -> Result<Response, ClientError> {
        req.validate()?;
        let deadline = Instant::now() + self.timeout;
        let frame = encode(req)?;
        if let Err(write_err) = self.write_all_by(&frame, deadline) {
            // The daemon may have answered and hung up before reading (a
            // `Busy` refusal at its connection cap). Its answer is still in
            // our receive buffer and must win over the broken pipe, or a
            // busy daemon would look unreachable, which failmode=safe
            // lets through.
            return self.read_response(deadline).map_err(|_| write_err);
        }
        self.read_response(deadline)
    }

    fn read_response(&mut self, deadline: Instant) -> Result<Response, ClientError> {
        let mut header = [0u8; 4];
        self.read_exact_by(&mut header, deadline)?;
        let mut payload = Zeroizing::new(vec![0u8; payload_len(header)?]);
        self.read_exact_by(&mut payload, deadline)?;
        Ok(decode(&payload)?)
    }

    fn remaining(&self, deadline: Instant) -> Result<Duration, ClientError> {
        at_least_a_millisecond(deadline).ok_or(ClientError::Timeout(self.timeout))
    }

    fn write_all_by(&mut self, mut buf: &[u8], deadline: Instant) -> Result<(), ClientError> {
        while !buf.is_empty() {
            let left = self.remaining(deadline)?;
            self.stream
                .set_write_timeout(Some(left))
                .map_err(FrameError::Io)?;
            match self.stream.send_with_flags(buf, libc::MSG_NOSIGNAL) {
                Ok(0) => return Err(FrameError::Closed.into()),
                Ok(n) => buf = &buf[n..],
                Err(e) => self.io_error(e)?,
            }
        }
        Ok(())
    }

    fn read_exact_by(&mut self, mut buf: &mut [u8], deadline: Instant) -> Result<(), ClientError> {
        while !buf.is_empty() {
            let left = self.remaining(deadline)?;
            self.stream
                .set_read_timeout(Some(left))
                .map_err(FrameError::Io)?;
            match (&self.stream).read(buf) {
                Ok(0) => return Err(FrameError::Closed.into()),
                Ok(n) => buf = &mut buf[n..],
                Err(e) => self.io_error(e)?,
            }
        }
        Ok(())
    }

    /// Interrupted calls are retried by the loops; timeouts become
    /// `Timeout`; anything else ends the exchange.
    fn io_error(&self, e: io::Error) -> Result<(), ClientError> {
        match e.kind() {
            io::ErrorKind::Interrupted => Ok(()),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                Err(ClientError::Timeout(self.timeout))
            }
            _ => Err(FrameError::Io(e).into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{read_frame, write_frame};
    use std::os::unix::net::UnixListener;

    fn temp_socket(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("smsotp-proto-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("s.sock")
    }

    #[test]
    fn missing_socket_is_absent() {
        let path = temp_socket("missing");
        let err = Client::connect(&path, Duration::from_millis(200), "test")
            .err()
            .unwrap();
        assert!(matches!(err, ClientError::Absent { .. }), "{err}");
        assert!(err.daemon_absent(), "{err}");
    }

    /// A daemon that accepts and never answers is present: anyone can make
    /// the real one look like this for a moment, so it is never "absent".
    #[test]
    fn silent_daemon_times_out_within_deadline_and_is_not_absent() {
        let path = temp_socket("silent");
        let listener = UnixListener::bind(&path).unwrap();
        // Accept and never answer.
        let t = std::thread::spawn(move || {
            let (s, _) = listener.accept().unwrap();
            std::thread::sleep(Duration::from_millis(800));
            drop(s);
        });
        let start = Instant::now();
        let err = Client::connect(&path, Duration::from_millis(300), "test")
            .err()
            .unwrap();
        let took = start.elapsed();
        assert!(matches!(err, ClientError::Timeout(_)), "{err}");
        assert!(!err.daemon_absent());
        assert!(took < Duration::from_millis(790), "took {took:?}");
        t.join().unwrap();
    }

    #[test]
    fn hello_exchange_and_version_mismatch() {
        let path = temp_socket("hello");
        let listener = UnixListener::bind(&path).unwrap();
        let t = std::thread::spawn(move || {
            for version in [PROTOCOL_VERSION, PROTOCOL_VERSION + 1] {
                let (mut s, _) = listener.accept().unwrap();
                let req: Request = read_frame(&mut s).unwrap();
                assert!(matches!(req, Request::Hello { .. }));
                write_frame(
                    &mut s,
                    &Response::Hello {
                        version,
                        server: "fake".into(),
                    },
                )
                .unwrap();
            }
        });
        let c = Client::connect(&path, Duration::from_secs(2), "test").unwrap();
        assert_eq!(c.server(), "fake");
        let err = Client::connect(&path, Duration::from_secs(2), "test")
            .err()
            .unwrap();
        assert!(matches!(err, ClientError::VersionMismatch { .. }));
        assert!(!err.daemon_absent());
        t.join().unwrap();
    }

    /// A protocol 3 daemon refuses hello 4; the client asks again with 3
    /// and the connection speaks 3 (so the module offers no call).
    #[test]
    fn an_older_daemon_is_spoken_to_in_its_version() {
        let path = temp_socket("older");
        let listener = UnixListener::bind(&path).unwrap();
        let t = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for _ in 0..2 {
                let (mut s, _) = listener.accept().unwrap();
                let Request::Hello { version, .. } = read_frame(&mut s).unwrap() else {
                    panic!("not a hello");
                };
                seen.push(version);
                let answer = if version == 3 {
                    Response::Hello {
                        version: 3,
                        server: "old".into(),
                    }
                } else {
                    Response::Error {
                        kind: ErrorKind::UnsupportedVersion,
                        message: format!("this daemon speaks protocol 3, not {version}"),
                    }
                };
                write_frame(&mut s, &answer).unwrap();
            }
            seen
        });
        let c = Client::connect(&path, Duration::from_secs(2), "test").unwrap();
        assert_eq!((c.server(), c.version()), ("old", 3));
        assert_eq!(t.join().unwrap(), vec![PROTOCOL_VERSION, 3]);
    }
}
