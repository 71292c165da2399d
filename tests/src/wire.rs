//! Raw bytes on the daemon's socket, for the hostile-peer tests.

use smsotp_proto::{Request, Response};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// What came back on one raw connection.
#[derive(Debug)]
pub struct RawReply {
    /// Complete frames, decoded as responses (or why they did not decode).
    pub frames: Vec<Result<Response, String>>,
    /// The daemon closed (EOF or reset) before the deadline.
    pub closed: bool,
    /// Bytes received in all.
    pub received: usize,
}

/// `u32` big-endian length + payload.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

/// A frame carrying `req` as JSON.
pub fn request_frame(req: &Request) -> Vec<u8> {
    frame(&serde_json::to_vec(req).expect("serialise request"))
}

pub fn hello_frame() -> Vec<u8> {
    request_frame(&Request::Hello {
        version: smsotp_proto::PROTOCOL_VERSION,
        client: "smsotp-tests-raw".into(),
    })
}

/// Connects, writes `data` (from a helper thread, so a daemon that stops
/// reading cannot block us), and reads until the daemon closes, until
/// `deadline` passes, or until `grace` after the last complete frame.
pub fn exchange(socket: &Path, data: Vec<u8>, deadline: Duration, grace: Duration) -> RawReply {
    let mut stream =
        UnixStream::connect(socket).unwrap_or_else(|e| panic!("connect {}: {e}", socket.display()));
    let mut writer = stream.try_clone().expect("clone stream");
    writer
        .set_write_timeout(Some(Duration::from_secs(5)))
        .expect("write timeout");
    let write_thread = std::thread::spawn(move || {
        // Errors are expected: the daemon may close mid-way (EPIPE/ECONNRESET).
        let _ = writer.write_all(&data);
        let _ = writer.flush();
    });
    stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .expect("read timeout");
    let end = Instant::now() + deadline;
    let mut buf = Vec::new();
    let mut closed = false;
    let mut last_frame_at: Option<Instant> = None;
    let mut chunk = [0u8; 4096];
    while Instant::now() < end {
        match stream.read(&mut chunk) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if complete_frames(&buf).1 > 0 {
                    last_frame_at = Some(Instant::now());
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => {
                closed = true;
                break;
            }
        }
        if last_frame_at.is_some_and(|t| t.elapsed() >= grace) {
            break;
        }
    }
    // Unblock the writer if it is still stuck, then join it.
    let _ = stream.shutdown(std::net::Shutdown::Both);
    let _ = write_thread.join();
    let (frames, _) = complete_frames(&buf);
    RawReply {
        frames,
        closed,
        received: buf.len(),
    }
}

/// Decodes the complete frames at the start of `buf`.
fn complete_frames(buf: &[u8]) -> (Vec<Result<Response, String>>, usize) {
    let mut frames = Vec::new();
    let mut rest = buf;
    while rest.len() >= 4 {
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if rest.len() < 4 + len {
            break;
        }
        frames.push(
            serde_json::from_slice::<Response>(&rest[4..4 + len])
                .map_err(|e| format!("{e}: {:?}", String::from_utf8_lossy(&rest[4..4 + len]))),
        );
        rest = &rest[4 + len..];
    }
    let n = frames.len();
    (frames, n)
}

/// Deterministic pseudo-random bytes (xorshift), for reproducible garbage.
pub fn pseudo_random(len: usize, mut seed: u32) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed as u8
        })
        .collect()
}
