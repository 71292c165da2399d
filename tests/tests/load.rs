//! Load: thousands of concurrent and slow (slowloris) connections. The
//! daemon caps them (`max_connections`, the handshake deadline), its memory
//! stays within a bound, and a root PAM login is still served or told
//! `Busy`, never waved through (even with `failmode=safe`).
//!
//! The bounds are generous on purpose (a slow CI machine must not fail
//! them); the measured numbers are printed and recorded in
//! docs/SECURITY.md.

use smsotp_tests::daemon::Daemon;
use smsotp_tests::faultkit::{open_fds, rss_kib, set_nofile, wait_until};
use smsotp_tests::flows::{assert_code_prompted, type_newest_code};
use smsotp_tests::libpam::{
    self, code_name, Outcome, PAM_AUTHINFO_UNAVAIL, PAM_IGNORE, PAM_SUCCESS,
};
use smsotp_tests::pamd::PamConfDir;
use smsotp_tests::{require_root, unique_name, wire};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

const MOBILE: &str = "+15557650001";
/// Memory the daemon may grow by under a flood (measured: a few MiB).
const RSS_BOUND_KIB: u64 = 64 * 1024;

fn login(d: &Daemon, user: &str, opts: &str) -> (Outcome, Duration) {
    let pamd = PamConfDir::new();
    pamd.smsotp_service("smsotp-load", &d.socket(), opts);
    let outbox = d.outbox();
    let t = Instant::now();
    let out = libpam::authenticate("smsotp-load", user, pamd.path(), type_newest_code(&outbox));
    (out, t.elapsed())
}

/// Served (code prompt, success) or refused as busy; never PAM_IGNORE and
/// never a success without the code prompt.
fn assert_served_or_busy(out: &Outcome) {
    assert_ne!(
        out.code, PAM_IGNORE,
        "a flood must not turn into PAM_IGNORE:\n{out}"
    );
    match out.code {
        PAM_SUCCESS => assert_code_prompted(out),
        PAM_AUTHINFO_UNAVAIL => assert!(
            out.transcript.errors().iter().any(|e| e.contains("busy")),
            "refused, but not as busy:\n{out}"
        ),
        other => panic!("unexpected {} under a flood:\n{out}", code_name(other)),
    }
}

/// Whether a Busy error frame is waiting on the stream (non-blocking).
fn got_busy(s: &mut UnixStream) -> bool {
    let _ = s.set_read_timeout(Some(Duration::from_millis(1)));
    let mut buf = [0u8; 512];
    match s.read(&mut buf) {
        Ok(n) if n > 4 => String::from_utf8_lossy(&buf[4..n]).contains("busy"),
        _ => false,
    }
}

#[test]
fn thousands_of_connections_are_capped_memory_stays_bounded_root_is_served_or_busy() {
    require_root("root PAM login during a flood");
    let user = unique_name("load");
    // A second account for the login after the flood: a code sent to the
    // first within the resend cooldown would not be sent again.
    let after = unique_name("loadafter");
    let d = Daemon::builder()
        .user(&user, MOBILE)
        .user(&after, "+15557650002")
        .log_level("warn")
        .top("max_connections = 100")
        .start();
    let pid = d.pid().expect("daemon pid");
    let rss0 = rss_kib(pid);
    let fds0 = open_fds(pid);

    // 3000 connections that never finish a hello (two bytes of a header:
    // the slowloris opening).
    let mut flood: Vec<UnixStream> = Vec::new();
    for _ in 0..3000 {
        match UnixStream::connect(d.socket()) {
            Ok(mut s) => {
                let _ = s.write_all(&[0, 0]);
                flood.push(s);
            }
            Err(e) => panic!("connect #{} failed: {e}", flood.len()),
        }
    }
    // The daemon answers Busy to everything over the cap.
    let mut busy = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut pending: Vec<usize> = (0..flood.len()).collect();
    while !pending.is_empty() && Instant::now() < deadline {
        pending.retain(|&i| {
            if got_busy(&mut flood[i]) {
                busy += 1;
                false
            } else {
                true
            }
        });
        if busy >= 3000 - 100 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let rss1 = rss_kib(pid);
    let fds1 = open_fds(pid);
    eprintln!(
        "flood: 3000 connections, {busy} answered Busy; daemon RSS {rss0} -> {rss1} KiB, \
         fds {fds0} -> {fds1}"
    );
    assert!(
        busy >= 2900,
        "only {busy} of 3000 were refused as busy (cap 100)"
    );
    assert!(
        fds1 <= fds0 + 100 + 16,
        "daemon holds {fds1} fds (cap 100, before {fds0})"
    );
    assert!(
        rss1 <= rss0 + RSS_BOUND_KIB,
        "daemon RSS grew from {rss0} to {rss1} KiB under the flood"
    );

    // A root login in the middle of the flood, failmode=safe: served or Busy.
    let (out, took) = login(&d, &user, "failmode=safe timeout=5");
    eprintln!(
        "root login during the flood: {} in {took:?}",
        code_name(out.code)
    );
    assert_served_or_busy(&out);
    assert!(took < Duration::from_secs(6), "login took {took:?}");

    // The flood ends: the next login is served.
    drop(flood);
    assert!(
        wait_until(Duration::from_secs(15), || open_fds(pid) <= fds0 + 4),
        "daemon still holds {} fds after the flood ended",
        open_fds(pid)
    );
    let (out, _) = login(&d, &after, "");
    out.assert_code(PAM_SUCCESS);
    assert_code_prompted(&out);
    d.assert_log_clean(&[]);
}

#[test]
fn slowloris_connections_are_dropped_at_the_handshake_deadline() {
    require_root("root PAM login");
    let user = unique_name("slow");
    let d = Daemon::builder()
        .user(&user, MOBILE)
        .log_level("warn")
        .top("max_connections = 64")
        .start();
    let pid = d.pid().expect("daemon pid");
    // Fill every slot with a connection that sends its hello one byte a
    // second (a full hello takes ~80 s at that pace).
    let hello = wire::hello_frame();
    let mut slow: Vec<(UnixStream, usize, bool)> = (0..64)
        .map(|_| (UnixStream::connect(d.socket()).expect("connect"), 0, false))
        .collect();
    let started = Instant::now();
    // Meanwhile a root login: Busy (every slot is taken) or served.
    let (out, _) = login(&d, &user, "failmode=safe timeout=3");
    assert_served_or_busy(&out);
    for _ in 0..30 {
        for (s, sent, closed) in slow.iter_mut() {
            if *closed {
                continue;
            }
            let _ = s.set_nonblocking(true);
            let mut b = [0u8; 256];
            match s.read(&mut b) {
                Ok(0) => *closed = true,
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => *closed = true,
            }
            if !*closed && *sent < hello.len() {
                match s.write(&hello[*sent..*sent + 1]) {
                    Ok(_) => *sent += 1,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(_) => *closed = true,
                }
            }
        }
        if slow.iter().all(|(_, _, c)| *c) {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    let took = started.elapsed();
    let open = slow.iter().filter(|(_, _, c)| !c).count();
    eprintln!("slowloris: all 64 dropped after {took:?}; {open} still open");
    assert_eq!(open, 0, "{open} slow connections still open after {took:?}");
    assert!(
        took < Duration::from_secs(25),
        "slow connections lived {took:?}"
    );
    assert!(wait_until(Duration::from_secs(5), || open_fds(pid) < 40));
    let (out, _) = login(&d, &user, "");
    out.assert_code(PAM_SUCCESS);
}

/// When the daemon runs out of file descriptors before it reaches
/// `max_connections` (an admin set the cap above `LimitNOFILE`), it cannot
/// even accept to say Busy. `failmode=secure` must still deny.
#[test]
fn out_of_file_descriptors_fails_closed_in_secure_mode() {
    require_root("root PAM login");
    let user = unique_name("nofd");
    let d = Daemon::builder()
        .user(&user, MOBILE)
        .log_level("warn")
        .top("max_connections = 1000")
        .start();
    let pid = d.pid().expect("daemon pid");
    set_nofile(pid, 64);
    let flood: Vec<UnixStream> = (0..200)
        .filter_map(|_| UnixStream::connect(d.socket()).ok())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let (out, took) = login(&d, &user, "failmode=secure timeout=2");
    eprintln!(
        "out of fds ({} connections queued): secure -> {} in {took:?}",
        flood.len(),
        code_name(out.code)
    );
    assert_ne!(out.code, PAM_SUCCESS, "{out}");
    assert_ne!(out.code, PAM_IGNORE, "{out}");
    assert!(took < Duration::from_secs(8), "took {took:?}");
    drop(flood);
    set_nofile(pid, 1024);
    assert!(wait_until(Duration::from_secs(15), || open_fds(pid) < 40));
    let (out, _) = login(&d, &user, "");
    out.assert_code(PAM_SUCCESS);
}

/// Known weakness (reported, see docs/SECURITY.md): out of descriptors, the
/// daemon cannot answer Busy, the module sees "no answer before a
/// challenge" and `failmode=safe` returns PAM_IGNORE. Ignored until the
/// daemon keeps `max_connections` below its descriptor limit.
#[test]
fn out_of_file_descriptors_does_not_fail_open_in_safe_mode() {
    require_root("root PAM login");
    let user = unique_name("nofds");
    let d = Daemon::builder()
        .user(&user, MOBILE)
        .log_level("warn")
        .top("max_connections = 1000")
        .start();
    let pid = d.pid().expect("daemon pid");
    set_nofile(pid, 64);
    let flood: Vec<UnixStream> = (0..200)
        .filter_map(|_| UnixStream::connect(d.socket()).ok())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let (out, took) = login(&d, &user, "failmode=safe timeout=2");
    eprintln!("out of fds, failmode=safe: {took:?}\n{out}");
    drop(flood);
    // The stack is pam_permit + the module: PAM_IGNORE from the module
    // makes the whole stack succeed without a code.
    assert!(
        out.code != PAM_SUCCESS || !out.transcript.code_prompts().is_empty(),
        "fails open:\n{out}"
    );
}
