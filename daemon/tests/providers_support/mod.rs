//! Shared by the `providers_*` tests: a loopback HTTP/1.1 server (plain
//! or TLS) that records requests and answers from a handler, config
//! loading from a private temp file, the OpenAPI specs, and a trace-level
//! log capture. Every read is bounded, every loop ends with its socket.

#![allow(dead_code)] // each test binary uses a different part

use rustls::pki_types::pem::PemObject;
use smsotpd::providers::{self, Chain, Sms};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use zeroize::Zeroizing;

pub const NUM: &str = "+15551234567";
pub const BODY: &str = "Your login code for bastion-1 is 918273. It expires in 5 minutes.";

pub fn sms() -> Sms {
    sms_with(BODY)
}

pub fn sms_with(body: &str) -> Sms {
    Sms {
        to: smsotp_config::Mobile::parse(NUM).unwrap(),
        body: Zeroizing::new(body.to_string()),
    }
}

// ---- requests and replies ---------------------------------------------

#[derive(Debug, Clone)]
pub struct Captured {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Captured {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn form(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(&self.body).into_owned().collect()
    }

    pub fn form_value(&self, key: &str) -> Option<String> {
        self.form()
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }
}

#[derive(Debug, Clone)]
pub enum Reply {
    Http {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// Read the request, never answer (the client's timeout must act).
    Hang,
    /// Read the request, close the connection without a word.
    Close,
}

impl Reply {
    pub fn json(status: u16, body: &str) -> Reply {
        Reply::Http {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.to_string(),
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Reply {
        if let Reply::Http { headers, .. } = &mut self {
            headers.push((name.into(), value.into()));
        }
        self
    }
}

type Handler = Arc<dyn Fn(&Captured) -> Reply + Send + Sync>;

pub struct Mock {
    pub base: String,
    requests: Arc<Mutex<Vec<Captured>>>,
    connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Mock {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Mock {
    pub async fn start(handler: impl Fn(&Captured) -> Reply + Send + Sync + 'static) -> Mock {
        Self::start_inner(Arc::new(handler), None).await
    }

    /// Same, over TLS with `cert_pem`/`key_pem`; `base` is `https://localhost:PORT`.
    pub async fn start_tls(
        cert_pem: &str,
        key_pem: &str,
        handler: impl Fn(&Captured) -> Reply + Send + Sync + 'static,
    ) -> Mock {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let certs =
            vec![rustls::pki_types::CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap()];
        let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        Self::start_inner(Arc::new(handler), Some(acceptor)).await
    }

    async fn start_inner(handler: Handler, tls: Option<tokio_rustls::TlsAcceptor>) -> Mock {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let base = match tls {
            Some(_) => format!("https://localhost:{port}"),
            None => format!("http://127.0.0.1:{port}"),
        };
        let requests = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let (reqs, conns) = (requests.clone(), connections.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                conns.fetch_add(1, Ordering::SeqCst);
                let (handler, reqs, tls) = (handler.clone(), reqs.clone(), tls.clone());
                tokio::spawn(async move {
                    match tls {
                        Some(acceptor) => {
                            if let Ok(s) = acceptor.accept(sock).await {
                                serve(s, handler, reqs).await;
                            }
                        }
                        None => serve(sock, handler, reqs).await,
                    }
                });
            }
        });
        Mock {
            base,
            requests,
            connections,
            task,
        }
    }

    pub fn requests(&self) -> Vec<Captured> {
        self.requests.lock().unwrap().clone()
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

const MAX_HEAD: usize = 64 * 1024;
const MAX_REQUEST_BODY: usize = 1024 * 1024;

/// Answers requests on one connection until the client closes it.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut sock: S,
    handler: Handler,
    requests: Arc<Mutex<Vec<Captured>>>,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            if buf.len() > MAX_HEAD {
                return;
            }
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let mut lines = head.split("\r\n");
        let mut first = lines.next().unwrap_or("").split(' ');
        let method = first.next().unwrap_or("").to_string();
        let target = first.next().unwrap_or("").to_string();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
            .collect();
        let len = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse::<usize>().ok())
            .unwrap_or(0)
            .min(MAX_REQUEST_BODY);
        buf.drain(..head_end + 4);
        while buf.len() < len {
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body: Vec<u8> = buf.drain(..len).collect();
        let captured = Captured {
            method,
            target,
            headers,
            body,
        };
        requests.lock().unwrap().push(captured.clone());
        match handler(&captured) {
            Reply::Hang => {
                // Hold the socket open without answering, bounded.
                tokio::time::sleep(Duration::from_secs(30)).await;
                return;
            }
            Reply::Close => return,
            Reply::Http {
                status,
                headers,
                body,
            } => {
                let mut out = format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\n", body.len());
                for (n, v) in headers {
                    out.push_str(&format!("{n}: {v}\r\n"));
                }
                out.push_str("\r\n");
                out.push_str(&body);
                if sock.write_all(out.as_bytes()).await.is_err() {
                    return;
                }
                let _ = sock.flush().await;
            }
        }
    }
}

// ---- config ---------------------------------------------------------------

/// A config directory with a private (0600) config file, as an admin
/// would write it, loaded through `smsotp_config::load`.
pub struct Setup {
    pub dir: tempfile::TempDir,
}

impl Setup {
    pub fn new() -> Setup {
        Setup {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Writes a 0600 file in the directory and returns its path.
    pub fn secret_file(&self, name: &str, value: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = self.dir.path().join(name);
        std::fs::write(&p, format!("{value}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        p
    }

    pub fn load(&self, providers_toml: &str) -> smsotp_config::DaemonConfig {
        use std::os::unix::fs::PermissionsExt;
        let p = self.dir.path().join("smsotpd.toml");
        std::fs::write(&p, providers_toml).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        smsotp_config::load(&p).unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn chain(&self, providers_toml: &str) -> Chain {
        let cfg = self.load(providers_toml);
        Chain::new(
            cfg.providers
                .iter()
                .map(|p| providers::build(p).unwrap_or_else(|e| panic!("{e}")))
                .collect(),
        )
    }
}

// ---- specs ----------------------------------------------------------------

/// `shared/specs/`, beside the repository (as CI has it).
pub fn specs_dir() -> PathBuf {
    let candidates = [
        std::env::var_os("SMSOTP_SPECS_DIR").map(PathBuf::from),
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/specs")),
        Some(PathBuf::from("/work/shared/specs")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|p| p.join("twilio_messages.json").exists())
        .expect("shared/specs not found beside the repository (set SMSOTP_SPECS_DIR)")
}

// ---- logs -------------------------------------------------------------------

#[derive(Clone, Default)]
pub struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogBuffer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).to_string()
    }
}

/// Sends every log record of this process, at TRACE and from every crate
/// (reqwest's `log` records too), into the returned buffer. Once per test
/// binary.
pub fn capture_all_logs() -> LogBuffer {
    use tracing_subscriber::util::SubscriberInitExt;
    let buf = LogBuffer::default();
    let writer = buf.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish()
        .try_init()
        .expect("a global subscriber was already set");
    buf
}
