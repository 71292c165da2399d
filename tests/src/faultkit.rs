//! Fixtures for the load, fault and security tests: misbehaving loopback
//! gateways, a tiny tmpfs, process memory, requests as an unprivileged uid,
//! and a lock for the few tests that must put variables into the
//! environment a daemon inherits.
//!
//! Everything cleans up in `Drop` (servers stop, mounts are unmounted) and
//! every wait is bounded.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How a [`FaultyGateway`] treats each request.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Read the request, then say nothing until the connection is dropped
    /// (or the gateway stops).
    Stall,
    /// Answer with this status and JSON body.
    Status(u16, String),
    /// Read the request, then reset the connection (RST via SO_LINGER 0).
    Reset,
    /// Read the request, then send these bytes and close.
    Garbage(Vec<u8>),
}

pub struct FaultyGateway {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    hits: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl FaultyGateway {
    pub fn start(fault: Fault) -> FaultyGateway {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let hits = Arc::new(AtomicUsize::new(0));
        let thread = {
            let (stop, hits) = (Arc::clone(&stop), Arc::clone(&hits));
            std::thread::spawn(move || {
                let mut held: Vec<TcpStream> = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((s, _)) => {
                            hits.fetch_add(1, Ordering::SeqCst);
                            if let Some(s) = handle(s, &fault) {
                                held.push(s);
                            }
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        FaultyGateway {
            addr,
            stop,
            hits,
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/sms", self.addr)
    }

    /// Connections accepted so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for FaultyGateway {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads one request (head + Content-Length body), bounded in time and size.
fn read_request(s: &mut TcpStream) {
    let _ = s.set_nonblocking(false);
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = Instant::now() + Duration::from_secs(3);
    while Instant::now() < end && buf.len() < 256 * 1024 {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if let Some(h) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..h]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= h + 4 + len {
                return;
            }
        }
    }
}

/// Returns the stream when it must be kept open (a stall).
fn handle(mut s: TcpStream, fault: &Fault) -> Option<TcpStream> {
    read_request(&mut s);
    match fault {
        Fault::Stall => return Some(s),
        Fault::Status(code, body) => {
            let _ = write!(
                s,
                "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            );
        }
        Fault::Reset => {
            use std::os::fd::AsRawFd;
            let linger = libc::linger {
                l_onoff: 1,
                l_linger: 0,
            };
            // SAFETY: a valid socket and a correctly sized option value;
            // closing it then sends RST.
            unsafe {
                libc::setsockopt(
                    s.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_LINGER,
                    (&linger as *const libc::linger).cast(),
                    std::mem::size_of::<libc::linger>() as libc::socklen_t,
                )
            };
        }
        Fault::Garbage(bytes) => {
            let _ = s.write_all(bytes);
        }
    }
    let _ = s.flush();
    None
}

/// VmRSS of a process in KiB (0 if it is gone).
pub fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS:")
}

/// Peak resident memory of a process over its life (VmHWM), in KiB.
pub fn hwm_kib(pid: u32) -> u64 {
    status_kib(pid, "VmHWM:")
}

fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Open file descriptors of a process.
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Sets the soft RLIMIT_NOFILE of a running process (util-linux `prlimit`;
/// the hard limit stays, so it can be raised again without privileges).
pub fn set_nofile(pid: u32, limit: u64) {
    let out = Command::new("prlimit")
        .arg(format!("--pid={pid}"))
        .arg(format!("--nofile={limit}:"))
        .output()
        .expect("run prlimit");
    assert!(
        out.status.success(),
        "prlimit failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const PY_CLIENT: &str = r#"
import json, socket, struct, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sys.argv[1])
def send(o):
    b = json.dumps(o).encode()
    s.sendall(struct.pack('>I', len(b)) + b)
def recv():
    h = b''
    while len(h) < 4:
        c = s.recv(4 - len(h))
        if not c:
            return {"type": "closed"}
        h += c
    n = struct.unpack('>I', h)[0]
    b = b''
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            return {"type": "closed"}
        b += c
    return json.loads(b)
for req in json.loads(sys.argv[2]):
    try:
        send(req)
        print(json.dumps(recv()), flush=True)
    except Exception as e:
        print(json.dumps({"type": "closed", "error": str(e)}), flush=True)
        break
"#;

/// Sends `requests` (a hello is prepended) on one connection as `uid`, with
/// Debian's python3, and returns every answer (`{"type":"closed"}` once
/// the daemon hung up).
pub fn requests_as(
    uid: u32,
    socket: &Path,
    requests: &[serde_json::Value],
) -> Vec<serde_json::Value> {
    use std::os::unix::process::CommandExt;
    let mut all = vec![serde_json::json!({
        "type": "hello",
        "version": smsotp_proto::PROTOCOL_VERSION,
        "client": "smsotp-tests-as-user"
    })];
    all.extend_from_slice(requests);
    let out = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(PY_CLIENT)
        .arg(socket)
        .arg(serde_json::Value::Array(all).to_string())
        .uid(uid)
        .gid(uid)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "python3 client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("client printed JSON"))
        .skip(1) // the hello
        .collect()
}

/// A tmpfs of `size` (e.g. `64k`) mounted on a fresh directory; unmounted
/// (lazily, so a daemon still holding a file cannot keep it) on drop.
pub struct Tmpfs {
    dir: tempfile::TempDir,
    mounted: bool,
}

impl Tmpfs {
    pub fn mount(size: &str) -> Tmpfs {
        crate::require_root("mounts a tmpfs");
        let dir = tempfile::Builder::new()
            .prefix("smsotp-tmpfs-")
            .tempdir_in("/tmp")
            .expect("mount point");
        let st = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(st.success(), "mount -t tmpfs failed");
        Tmpfs { dir, mounted: true }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Remounts read-only (or back to read-write).
    pub fn set_readonly(&self, ro: bool) {
        let st = Command::new("mount")
            .args(["-o", if ro { "remount,ro" } else { "remount,rw" }])
            .arg(self.dir.path())
            .status()
            .expect("run mount");
        assert!(st.success(), "remount failed");
    }

    /// Writes a file until the filesystem is full; returns its path.
    pub fn fill(&self) -> PathBuf {
        let p = self.dir.path().join("filler");
        let mut f = std::fs::File::create(&p).expect("create filler");
        let block = [0u8; 4096];
        for _ in 0..100_000 {
            if f.write_all(&block).is_err() {
                break;
            }
        }
        let _ = f.sync_all();
        p
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        if self.mounted {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
            self.mounted = false;
        }
    }
}

/// Held while a test changes the environment that a child it starts
/// inherits (LD_PRELOAD for libfaketime): tests of one binary run in
/// threads of one process.
pub fn env_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// libfaketime's preload library, if installed (`apt-get install faketime`).
pub fn libfaketime() -> Option<PathBuf> {
    [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/faketime/libfaketime.so.1",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

/// Waits until `f` holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
