//! Pending challenges: how much daemon memory a code waiting to be typed
//! costs (connections held open, each after a `Begin` answered by a
//! `Challenge`).

use crate::subjects::user;
use std::path::Path;
use std::time::{Duration, Instant};

/// VmRSS of a process in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// Opens `n` connections, each with a pending challenge; returns the
/// daemon's RSS (KiB) with them all open, and how many succeeded.
pub fn pending_challenges(socket: &Path, pid: u32, n: usize) -> (usize, u64, Duration) {
    use smsotp_proto::{BeginRequest, Client, Request, Response};
    let threads = 8;
    let t0 = Instant::now();
    let held: Vec<Vec<Client>> = std::thread::scope(|scope| {
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    let mut v = Vec::new();
                    for i in (t..n).step_by(threads) {
                        let mut c = match Client::connect(
                            socket,
                            Duration::from_secs(20),
                            "smsotp-bench",
                        ) {
                            Ok(c) => c,
                            Err(e) => {
                                eprintln!("pending challenge {i}: connect: {e}");
                                break;
                            }
                        };
                        let req = Request::Begin(BeginRequest {
                            user: user(i).to_string(),
                            service: "bench-pending".into(),
                            rhost: None,
                            tty: None,
                            command: None,
                        });
                        match c.call(&req) {
                            Ok(Response::Challenge(_)) => v.push(c),
                            Ok(other) => {
                                eprintln!("pending challenge {i}: unexpected answer {other:?}");
                                break;
                            }
                            Err(e) => {
                                eprintln!("pending challenge {i}: {e}");
                                break;
                            }
                        }
                    }
                    v
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let took = t0.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    let rss = rss_kib(pid);
    let count = held.iter().map(Vec::len).sum();
    drop(held);
    (count, rss, took)
}

pub fn raise_nofile() -> u64 {
    // SAFETY: plain getrlimit/setrlimit on our own process.
    unsafe {
        let mut rl: libc::rlimit = std::mem::zeroed();
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl);
        // Try for more than the hard limit (needs CAP_SYS_RESOURCE), then
        // settle for the hard limit.
        let want = libc::rlimit {
            rlim_cur: 1 << 20,
            rlim_max: 1 << 20,
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &want) != 0 {
            rl.rlim_cur = rl.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &rl);
        }
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl);
        rl.rlim_cur
    }
}
