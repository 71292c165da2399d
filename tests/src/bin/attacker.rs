//! `attacker`: the hostile local user of the `tests/tests/hostile_*.rs` files,
//! compiled so that it keeps up with the daemon (an interpreter loop does
//! not fill a listen backlog). The tests run it as uid 65534. It prints one
//! JSON line of figures when it is done.
//!
//! - `attacker flood SOCKET SECONDS THREADS`: THREADS tight loops of
//!   non-blocking connect() + close() for SECONDS. Prints
//!   `{"connected": N, "eagain": N, "other": N}`.
//! - `attacker hold SOCKET USER WANT SECONDS`: opens up to WANT connections
//!   (hello each), then sends `Status{USER}` on every open one each 3 s for
//!   SECONDS. Prints `{"opened": N, "refused": N, "status_ok": N,
//!   "still_open": N, "closed": [[LAST_OK_MS, FAILED_MS], ..]}`: for each
//!   connection the daemon closed, when (after its hello) its last status
//!   was answered and when the first one failed.
//! - `attacker burst SOCKET N REQUEST_JSON`: the same request on N
//!   connections at once (one thread each, released together) with the
//!   blocking proto client. Prints a JSON array with one entry per
//!   connection: `{"response": <Response>}` or `{"error": "..."}`.

use smsotp_proto::{Client, Request, Response};
use smsotp_tests::flood::{connect_once, sockaddr};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// How often a held connection asks for its status (the finding's 3 s).
const RENEW_EVERY: Duration = Duration::from_secs(3);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let out = match (args.get(1).map(String::as_str), args.len()) {
        (Some("flood"), 5) => flood(Path::new(&args[2]), secs(&args[3]), number(&args[4])),
        (Some("hold"), 6) => hold(
            Path::new(&args[2]),
            &args[3],
            number(&args[4]),
            secs(&args[5]),
        ),
        (Some("burst"), 5) => burst(Path::new(&args[2]), number(&args[3]), &args[4]),
        _ => {
            eprintln!(
                "usage: attacker flood SOCKET SECONDS THREADS | hold SOCKET USER WANT SECONDS \
                 | burst SOCKET N REQUEST_JSON"
            );
            std::process::exit(2);
        }
    };
    println!("{out}");
}

fn number(s: &str) -> usize {
    s.parse().unwrap_or_else(|_| panic!("not a number: {s}"))
}

fn secs(s: &str) -> Duration {
    Duration::from_secs_f64(s.parse().unwrap_or_else(|_| panic!("not seconds: {s}")))
}

fn flood(socket: &Path, run: Duration, threads: usize) -> serde_json::Value {
    let addr = Arc::new(sockaddr(socket));
    let counts: Arc<[AtomicU64; 3]> = Arc::new(Default::default());
    let end = Instant::now() + run;
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let addr = Arc::clone(&addr);
            let counts = Arc::clone(&counts);
            std::thread::spawn(move || {
                while Instant::now() < end {
                    let slot = match connect_once(&addr) {
                        0 => 0,
                        libc::EAGAIN => 1,
                        _ => 2,
                    };
                    counts[slot].fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
    let [connected, eagain, other] = &*counts;
    serde_json::json!({
        "connected": connected.load(Ordering::Relaxed),
        "eagain": eagain.load(Ordering::Relaxed),
        "other": other.load(Ordering::Relaxed),
    })
}

fn hold(socket: &Path, user: &str, want: usize, run: Duration) -> serde_json::Value {
    let started = Instant::now();
    // (connection, hello answered at, last status answered at)
    let mut open: Vec<(Client, Instant, Duration)> = Vec::new();
    let mut refused = 0;
    for _ in 0..want {
        match Client::connect(socket, Duration::from_secs(2), "attacker") {
            Ok(c) => open.push((c, Instant::now(), Duration::ZERO)),
            Err(_) => refused += 1,
        }
    }
    let opened = open.len();
    let mut status_ok = 0;
    let mut closed: Vec<[u128; 2]> = Vec::new();
    let status = Request::Status { user: user.into() };
    while started.elapsed() < run && !open.is_empty() {
        open.retain_mut(|(client, since, last_ok)| match client.call(&status) {
            Ok(Response::Status(_)) => {
                status_ok += 1;
                *last_ok = since.elapsed();
                true
            }
            _ => {
                closed.push([last_ok.as_millis(), since.elapsed().as_millis()]);
                false
            }
        });
        std::thread::sleep(RENEW_EVERY.min(run.saturating_sub(started.elapsed())));
    }
    serde_json::json!({
        "opened": opened,
        "refused": refused,
        "status_ok": status_ok,
        "still_open": open.len(),
        "closed": closed,
    })
}

fn burst(socket: &Path, n: usize, json: &str) -> serde_json::Value {
    let req: Request = serde_json::from_str(json).unwrap_or_else(|e| panic!("not a request: {e}"));
    let n = n.clamp(1, 256);
    let start = Arc::new(Barrier::new(n));
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let (socket, req, start) = (socket.to_path_buf(), req.clone(), Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                Client::connect(&socket, Duration::from_secs(60), "attacker")
                    .and_then(|mut c| c.call(&req))
            })
        })
        .collect();
    threads
        .into_iter()
        .map(|t| match t.join() {
            Ok(Ok(resp)) => serde_json::json!({ "response": resp }),
            Ok(Err(e)) => serde_json::json!({ "error": e.to_string() }),
            Err(_) => serde_json::json!({ "error": "thread panicked" }),
        })
        .collect()
}
