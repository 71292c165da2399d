//! A loopback SMS gateway for the benchmark: HTTP/1.1 with keep-alive,
//! plain or TLS (a self-signed CA written to a PEM file the daemon is told
//! to trust). One thread per connection, so the daemon's connection pool
//! decides how many there are.
//!
//! Each request body is `{"to": "+1555XXXXXXX", "text": "...code..."}`;
//! the code goes into the slot the number names (the last six digits), so
//! the benchmark's conversation answers like a user reading the SMS.
//!
//! The gateway is not part of smsotp's cost: every request's CPU time
//! (thread CPU clock, TLS included) is added to [`Mock::cpu`], which the
//! harness subtracts from its own.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const MAX_HEAD: usize = 16 * 1024;
const MAX_BODY: usize = 64 * 1024;

/// `n` atomics in memory shared with forked children (MAP_SHARED), so
/// worker processes see what the gateway thread in the parent receives.
pub struct SharedU64 {
    ptr: *mut AtomicU64,
    len: usize,
}

// SAFETY: the mapping holds atomics only and lives until drop.
unsafe impl Send for SharedU64 {}
unsafe impl Sync for SharedU64 {}

impl SharedU64 {
    pub fn new(len: usize) -> SharedU64 {
        let bytes = len.max(1) * 8;
        // SAFETY: anonymous shared mapping, zero-filled; checked below.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert!(ptr != libc::MAP_FAILED, "mmap failed");
        SharedU64 {
            ptr: ptr.cast(),
            len,
        }
    }

    pub fn at(&self, i: usize) -> &AtomicU64 {
        assert!(i < self.len);
        // SAFETY: in bounds; zeroed memory is a valid AtomicU64.
        unsafe { &*self.ptr.add(i) }
    }
}

impl Drop for SharedU64 {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`.
        unsafe { libc::munmap(self.ptr.cast(), self.len.max(1) * 8) };
    }
}

/// The newest code per slot (a seqlock over shared memory): the gateway
/// writes, worker processes read.
pub struct Codes {
    // Per slot: seq, len, two words of code bytes.
    mem: SharedU64,
    slots: usize,
}

impl Codes {
    pub fn new(n: usize) -> Codes {
        Codes {
            mem: SharedU64::new(n * 4),
            slots: n,
        }
    }

    pub fn put(&self, slot: usize, code: &str) {
        if slot >= self.slots || code.len() > 16 {
            return;
        }
        let mut bytes = [0u8; 16];
        bytes[..code.len()].copy_from_slice(code.as_bytes());
        let seq = self.mem.at(slot * 4);
        // Odd while writing.
        seq.fetch_add(1, Ordering::AcqRel);
        self.mem
            .at(slot * 4 + 1)
            .store(code.len() as u64, Ordering::Relaxed);
        self.mem.at(slot * 4 + 2).store(
            u64::from_le_bytes(bytes[..8].try_into().unwrap()),
            Ordering::Relaxed,
        );
        self.mem.at(slot * 4 + 3).store(
            u64::from_le_bytes(bytes[8..].try_into().unwrap()),
            Ordering::Relaxed,
        );
        seq.fetch_add(1, Ordering::Release);
    }

    /// (number of codes received, newest code) of a slot.
    pub fn get(&self, slot: usize) -> (u64, String) {
        loop {
            let seq = self.mem.at(slot * 4).load(Ordering::Acquire);
            if seq % 2 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let len = self.mem.at(slot * 4 + 1).load(Ordering::Relaxed) as usize;
            let mut bytes = [0u8; 16];
            bytes[..8].copy_from_slice(
                &self
                    .mem
                    .at(slot * 4 + 2)
                    .load(Ordering::Relaxed)
                    .to_le_bytes(),
            );
            bytes[8..].copy_from_slice(
                &self
                    .mem
                    .at(slot * 4 + 3)
                    .load(Ordering::Relaxed)
                    .to_le_bytes(),
            );
            std::sync::atomic::fence(Ordering::Acquire);
            if self.mem.at(slot * 4).load(Ordering::Relaxed) == seq {
                let code = String::from_utf8_lossy(&bytes[..len.min(16)]).into_owned();
                return (seq / 2, code);
            }
        }
    }

    /// Waits (bounded) for a code newer than `after`. The daemon answers
    /// the module only after the gateway took the message, so this rarely
    /// waits at all.
    pub fn wait_newer(&self, slot: usize, after: u64, timeout: Duration) -> Option<String> {
        let deadline = std::time::Instant::now() + timeout;
        let mut spins = 0u32;
        loop {
            let (seq, code) = self.get(slot);
            if seq > after {
                return Some(code);
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            spins += 1;
            if spins < 100 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
    }
}

/// The number for slot `i`: `+1555` and six digits.
pub fn mobile(i: usize) -> String {
    format!("+1555{i:06}")
}

pub fn slot_of(mobile: &str) -> Option<usize> {
    let digits = mobile.strip_prefix("+1555")?;
    digits.parse().ok()
}

pub struct Mock {
    addr: SocketAddr,
    pub codes: Arc<Codes>,
    cpu_ns: Arc<AtomicU64>,
    requests: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    tls: bool,
}

/// Paths of the CA the daemon must trust for the TLS mock.
pub struct Tls {
    pub config: Arc<rustls::ServerConfig>,
    pub ca_pem: String,
}

/// A CA and a leaf for `127.0.0.1`/`localhost` signed by it.
pub fn make_tls() -> Tls {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, SanType};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "smsotp bench CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("CA key"))
        .expect("CA cert");
    let leaf_key = KeyPair::generate().expect("leaf key");
    let mut leaf_params = CertificateParams::new(vec!["localhost".to_string()]).expect("leaf");
    leaf_params
        .subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
    let leaf = leaf_params.signed_by(&leaf_key, &ca).expect("leaf cert");
    let certs = vec![leaf.der().clone(), ca.der().clone()];
    let key =
        rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der()).expect("leaf key der");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server config");
    Tls {
        config: Arc::new(config),
        ca_pem: ca.pem(),
    }
}

impl Mock {
    /// Listens on 127.0.0.1 (any port); `tls` makes it HTTPS.
    pub fn start(slots: usize, tls: Option<Arc<rustls::ServerConfig>>) -> Mock {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let mock = Mock {
            addr,
            codes: Arc::new(Codes::new(slots)),
            cpu_ns: Arc::new(AtomicU64::new(0)),
            requests: Arc::new(AtomicU64::new(0)),
            stop: Arc::new(AtomicBool::new(false)),
            tls: tls.is_some(),
        };
        let (codes, cpu, reqs, stop) = (
            Arc::clone(&mock.codes),
            Arc::clone(&mock.cpu_ns),
            Arc::clone(&mock.requests),
            Arc::clone(&mock.stop),
        );
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((s, _)) => {
                        let (codes, cpu, reqs, stop, tls) = (
                            Arc::clone(&codes),
                            Arc::clone(&cpu),
                            Arc::clone(&reqs),
                            Arc::clone(&stop),
                            tls.clone(),
                        );
                        std::thread::spawn(move || {
                            let _ = connection(s, tls, &codes, &cpu, &reqs, &stop);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        mock
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}/sms", self.addr)
    }

    /// CPU time spent serving requests so far.
    pub fn cpu(&self) -> Duration {
        Duration::from_nanos(self.cpu_ns.load(Ordering::Relaxed))
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// CPU time of the calling thread.
pub fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out-pointer; CLOCK_THREAD_CPUTIME_ID always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn connection(
    tcp: TcpStream,
    tls: Option<Arc<rustls::ServerConfig>>,
    codes: &Codes,
    cpu: &AtomicU64,
    reqs: &AtomicU64,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    tcp.set_nonblocking(false)?;
    tcp.set_nodelay(true)?;
    // Idle keep-alive connections are polled so the thread ends with the mock.
    tcp.set_read_timeout(Some(Duration::from_millis(500)))?;
    match tls {
        None => serve(tcp, codes, cpu, reqs, stop),
        Some(cfg) => {
            let conn = rustls::ServerConnection::new(cfg).map_err(std::io::Error::other)?;
            serve(rustls::StreamOwned::new(conn, tcp), codes, cpu, reqs, stop)
        }
    }
}

fn serve<S: Read + Write>(
    stream: S,
    codes: &Codes,
    cpu: &AtomicU64,
    reqs: &AtomicU64,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    let mut body = Vec::new();
    loop {
        // Head. A timeout between requests is an idle keep-alive.
        let mut head = 0usize;
        let mut length = 0usize;
        let mut first = true;
        let t0 = thread_cpu();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) => return Ok(()),
                Ok(n) => head += n,
                Err(e)
                    if first
                        && matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                {
                    if stop.load(Ordering::Relaxed) {
                        return Ok(());
                    }
                    continue;
                }
                Err(e) => return Err(e),
            }
            first = false;
            if head > MAX_HEAD {
                return Err(std::io::Error::other("head too long"));
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((n, v)) = l.split_once(':') {
                if n.trim().eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
        }
        if length > MAX_BODY {
            return Err(std::io::Error::other("body too long"));
        }
        body.resize(length, 0);
        reader.read_exact(&mut body)?;
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) {
            let to = v["to"].as_str().and_then(slot_of);
            let code = v["text"]
                .as_str()
                .and_then(smsotp_tests::outbox::extract_code);
            if let (Some(slot), Some(code)) = (to, code) {
                codes.put(slot, &code);
            }
        }
        let answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"ok\":true}";
        reader.get_mut().write_all(answer)?;
        reader.get_mut().flush()?;
        reqs.fetch_add(1, Ordering::Relaxed);
        let spent = thread_cpu().saturating_sub(t0);
        cpu.fetch_add(spent.as_nanos() as u64, Ordering::Relaxed);
    }
}
