//! Blocking client for the PAM module and the CLI. Every socket operation
//! runs under a deadline: a stalled daemon must never hold sshd past its
//! LoginGraceTime. No threads, no async runtime.

use crate::frame::{decode, encode, payload_len, FrameError};
use crate::message::{ErrorKind, Request, Response};
use crate::PROTOCOL_VERSION;
use socket2::{Domain, SockAddr, Socket, Type};
use std::io::{self, Read};
use std::path::Path;
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {path}: {source}")]
    Connect { path: String, source: io::Error },
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
    /// True when the daemon could not be reached or did not answer in time:
    /// the case `failmode=safe` is allowed to wave through.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            ClientError::Connect { .. }
                | ClientError::Timeout(_)
                | ClientError::Frame(FrameError::Closed)
                | ClientError::Frame(FrameError::Io(_))
        )
    }
}

pub struct Client {
    /// Writes pass MSG_NOSIGNAL explicitly: inside sshd or sudo a write to
    /// a closed socket must never raise SIGPIPE in the host process, whose
    /// disposition is not ours to assume.
    stream: Socket,
    timeout: Duration,
    server: String,
}

impl Client {
    /// Connects and exchanges hellos, all within `timeout`.
    pub fn connect(
        path: &Path,
        timeout: Duration,
        client_name: &str,
    ) -> Result<Client, ClientError> {
        let connect_err = |source| ClientError::Connect {
            path: path.display().to_string(),
            source,
        };
        let addr = SockAddr::unix(path).map_err(connect_err)?;
        let socket =
            Socket::new(Domain::UNIX, Type::STREAM.cloexec(), None).map_err(connect_err)?;
        socket.connect_timeout(&addr, timeout).map_err(|e| {
            if e.kind() == io::ErrorKind::TimedOut || e.kind() == io::ErrorKind::WouldBlock {
                ClientError::Timeout(timeout)
            } else {
                connect_err(e)
            }
        })?;
        socket.set_nonblocking(false).map_err(connect_err)?;
        let mut client = Client {
            stream: socket,
            timeout,
            server: String::new(),
        };
        match client.call(&Request::Hello {
            version: PROTOCOL_VERSION,
            client: client_name.to_string(),
        })? {
            Response::Hello { version, server } if version == PROTOCOL_VERSION => {
                client.server = server;
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
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            Err(ClientError::Timeout(self.timeout))
        } else {
            Ok(left)
        }
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
    fn missing_socket_is_unavailable() {
        let path = temp_socket("missing");
        let err = Client::connect(&path, Duration::from_millis(200), "test")
            .err()
            .unwrap();
        assert!(err.is_unavailable(), "{err}");
    }

    #[test]
    fn silent_daemon_times_out_within_deadline() {
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
        assert!(err.is_unavailable());
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
        assert!(!err.is_unavailable());
        t.join().unwrap();
    }
}
