//! Instructions per login from `valgrind --tool=callgrind`: unlike
//! seconds, instruction counts hardly move when other work shares the
//! machine, so two runs (or two branches) compare to a few percent.
//!
//! - Module side: this binary re-executed under callgrind
//!   (`smsotp-bench callgrind-login ...`) does N complete libpam logins
//!   in-process; only `callgrind_logins` is counted (--toggle-collect), so
//!   process start-up is left out; the conversation (reading the code,
//!   computing a TOTP/HOTP) is in, as it is for every subject.
//! - Daemon side: smsotpd itself under callgrind (SQLite sync normal,
//!   outbox on tmpfs) serving `small` and then `small + N` begin+verify
//!   cycles in two runs; the difference over N is the per-cycle cost,
//!   start-up and shutdown cancelling out.

use crate::args::{num, pairs, usage};
use crate::daemon_bench::{cycle, rig};
use crate::mock::{self, SharedU64};
use crate::otp;
use crate::outbox_tail::OutboxTail;
use crate::subjects::{user, write_service, Kind, Subjects};
use smsotp_tests::libpam::{self, PAM_SUCCESS};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// The total `Ir` of a callgrind output file.
fn instructions(out: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(out).ok()?;
    text.lines()
        .find_map(|l| {
            l.strip_prefix("totals:")
                .or_else(|| l.strip_prefix("summary:"))
        })
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

fn valgrind(out: &Path) -> Command {
    let mut c = Command::new("valgrind");
    c.arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

/// How the re-executed child answers the conversation.
struct Child {
    service: String,
    confdir: PathBuf,
    user: String,
    kind: String,
    logins: usize,
    outbox: Option<PathBuf>,
    mobile: String,
    secret: Vec<u8>,
    counter: u64,
}

/// The counted part of the child: `c.logins` libpam logins; failures.
#[inline(never)]
fn callgrind_logins(c: &Child, tail: &mut Option<OutboxTail>, counter: &mut u64) -> usize {
    let mut failures = 0;
    for _ in 0..c.logins {
        let mut answered = false;
        let outcome = libpam::authenticate(&c.service, &c.user, &c.confdir, |p| {
            let code = match c.kind.as_str() {
                "smsotp" if p.text.starts_with("Code sent to ") => tail
                    .as_mut()?
                    .next_code_for(&c.mobile, Duration::from_secs(30)),
                "gauth" => Some(otp::totp(&c.secret, crate::measure::now_unix())),
                "oath" => Some(otp::hotp(&c.secret, *counter)),
                _ => None,
            };
            answered |= code.is_some();
            code
        });
        if outcome.code == PAM_SUCCESS && answered == (c.kind != "floor") {
            *counter += 1;
        } else {
            failures += 1;
        }
    }
    failures
}

/// `smsotp-bench callgrind-login`: the child side, run under valgrind.
pub fn child_main(args: impl Iterator<Item = String>) -> ExitCode {
    let mut c = Child {
        service: String::new(),
        confdir: PathBuf::new(),
        user: String::new(),
        kind: "floor".into(),
        logins: 10,
        outbox: None,
        mobile: String::new(),
        secret: Vec::new(),
        counter: 0,
    };
    for (flag, val) in pairs(args) {
        let v = val.clone().unwrap_or_default();
        match flag.as_str() {
            "--service" => c.service = v,
            "--confdir" => c.confdir = v.into(),
            "--user" => c.user = v,
            "--kind" => c.kind = v,
            "--logins" => c.logins = num(&val),
            "--outbox" => c.outbox = Some(v.into()),
            "--mobile" => c.mobile = v,
            "--secret" => c.secret = v.into_bytes(),
            "--counter" => c.counter = num(&val),
            _ => usage(),
        }
    }
    let mut tail = c.outbox.as_deref().map(OutboxTail::at_end);
    let mut counter = c.counter;
    let failures = callgrind_logins(&c, &mut tail, &mut counter);
    ExitCode::from(failures.min(255) as u8)
}

/// Module side of one subject: instructions per login, or why not.
fn module_side(child: &Child, dir: &Path) -> Result<u64, String> {
    let out = dir.join(format!("client-{}.out", child.kind));
    let mut cmd = valgrind(&out);
    cmd.arg("--toggle-collect=*callgrind_logins*")
        .arg(std::env::current_exe().map_err(|e| e.to_string())?)
        .arg("callgrind-login")
        .args([
            "--service",
            &child.service,
            "--user",
            &child.user,
            "--kind",
            &child.kind,
        ])
        .arg("--confdir")
        .arg(&child.confdir)
        .args([
            "--logins",
            &child.logins.to_string(),
            "--mobile",
            &child.mobile,
        ])
        .args(["--counter", &child.counter.to_string()]);
    if !child.secret.is_empty() {
        cmd.arg("--secret")
            .arg(String::from_utf8_lossy(&child.secret).as_ref());
    }
    if let Some(o) = &child.outbox {
        cmd.arg("--outbox").arg(o);
    }
    let status = cmd.status().map_err(|e| format!("valgrind: {e}"))?;
    if !status.success() {
        return Err(format!(
            "{} logins failed under callgrind ({status})",
            child.kind
        ));
    }
    let total = instructions(&out).ok_or("no callgrind totals")?;
    Ok(total / child.logins.max(1) as u64)
}

/// Daemon side: smsotpd under callgrind serving `cycles` cycles; its Ir.
fn daemon_run(target: &Path, cycles: usize, out: &Path) -> Result<u64, String> {
    let mut r = rig(target, "sqlite-normal", 1, false)?;
    let config = r.daemon.config_path().to_path_buf();
    let socket = r.daemon.socket();
    r.daemon.stop();
    let _ = std::fs::remove_file(&socket);
    let mut child = valgrind(out)
        .arg(target.join("smsotpd"))
        .arg("--config")
        .arg(&config)
        .spawn()
        .map_err(|e| format!("valgrind: {e}"))?;
    let ready_by = Instant::now() + Duration::from_secs(120);
    while smsotp_proto::Client::connect(&socket, Duration::from_secs(5), "smsotp-bench").is_err() {
        if Instant::now() > ready_by {
            let _ = child.kill();
            return Err("smsotpd under callgrind did not answer".into());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut seq = r.codes.get(0).0;
    let mut failed = 0;
    for _ in 0..cycles {
        if cycle(&socket, &r.codes, 0, &mut seq).is_err() {
            failed += 1;
        }
    }
    // SAFETY: signalling our own child; SIGTERM lets callgrind write its file.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let _ = child.wait();
    if failed > 0 {
        return Err(format!(
            "{failed} of {cycles} cycles failed under callgrind"
        ));
    }
    instructions(out).ok_or_else(|| "no callgrind totals for smsotpd".into())
}

/// The report section: both sides, ratios to floor and the peers.
/// `keep`: where the callgrind files stay for `callgrind_annotate`
/// (client-KIND.out, d1.out and d2.out: the daemon's two runs).
pub fn section(subjects: &Subjects, target: &Path, logins: usize, keep: Option<&Path>) -> String {
    let Ok(tmp) = tempfile::tempdir() else {
        return "instructions: not measured (no temp dir)\n".into();
    };
    let dir = match keep {
        Some(k) if std::fs::create_dir_all(k).is_ok() => k,
        _ => tmp.path(),
    };
    let mut rows: Vec<(String, Result<u64, String>)> = Vec::new();
    // smsotp with the outbox provider, so the child can read its code.
    let r = rig(target, "sqlite-normal", 1, false);
    for s in &subjects.list {
        let (kind, secret, counter) = match &s.kind {
            Kind::Floor => ("floor", Vec::new(), 0),
            Kind::Gauth { secret } => ("gauth", secret.clone(), 0),
            Kind::Oath { secret, counters } => ("oath", secret.clone(), at(counters)),
            Kind::Smsotp { .. } => continue,
        };
        let child = Child {
            service: s.service.clone(),
            confdir: s.confdir.clone(),
            user: user(0).into(),
            kind: kind.into(),
            logins,
            outbox: None,
            mobile: String::new(),
            secret,
            counter,
        };
        rows.push((kind.into(), module_side(&child, dir)));
    }
    match &r {
        Ok(r) => {
            let module = target.join("libpam_smsotp.so");
            let auth = format!(
                "auth required pam_permit.so\nauth required {} socket={} timeout=60\n",
                module.display(),
                r.daemon.socket().display()
            );
            write_service(&subjects.confdir, "bench-cg-smsotp", &auth);
            let child = Child {
                service: "bench-cg-smsotp".into(),
                confdir: subjects.confdir.clone(),
                user: user(0).into(),
                kind: "smsotp".into(),
                logins,
                outbox: r.outbox.clone(),
                mobile: mock::mobile(0),
                secret: Vec::new(),
                counter: 0,
            };
            rows.push(("smsotp".into(), module_side(&child, dir)));
        }
        Err(e) => rows.push(("smsotp".into(), Err(e.clone()))),
    }
    drop(r);
    render(&rows, &daemon_per_cycle(target, logins, dir), logins)
}

/// The daemon's instructions per begin+verify cycle: two runs under
/// callgrind, 5 and 5 + `cycles` cycles, the difference over `cycles`.
pub fn daemon_per_cycle(target: &Path, cycles: usize, dir: &Path) -> Result<u64, String> {
    let small = 5;
    let a = daemon_run(target, small, &dir.join("d1.out"))?;
    let b = daemon_run(target, small + cycles, &dir.join("d2.out"))?;
    Ok(b.saturating_sub(a) / cycles.max(1) as u64)
}

fn at(c: &SharedU64) -> u64 {
    c.at(0).load(Ordering::Relaxed)
}

fn render(
    rows: &[(String, Result<u64, String>)],
    daemon: &Result<u64, String>,
    n: usize,
) -> String {
    let mut md = format!(
        "instructions per login (valgrind --tool=callgrind, {n} logins each; client = the \
         process doing pam_start..pam_end, conversation included; daemon = smsotpd per \
         begin+verify cycle, SQLite sync normal, outbox provider):\n\n\
         | subject | client Ir/login | daemon Ir/login | total | x floor | x gauth | x oath |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n"
    );
    let get = |k: &str| {
        rows.iter()
            .find(|r| r.0 == k)
            .and_then(|r| r.1.as_ref().ok())
            .copied()
    };
    let d = daemon.as_ref().ok().copied();
    let total = |k: &str| get(k).map(|c| c + if k == "smsotp" { d.unwrap_or(0) } else { 0 });
    let ratio = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) if b > 0 => format!("{:.2}", a as f64 / b as f64),
        _ => "-".into(),
    };
    for (name, r) in rows {
        match r {
            Ok(c) => {
                let dd = if name == "smsotp" {
                    d.map_or("?".into(), |x| x.to_string())
                } else {
                    "0".into()
                };
                let t = total(name);
                let _ = writeln!(
                    md,
                    "| {name} | {c} | {dd} | {} | {} | {} | {} |",
                    t.unwrap_or(0),
                    ratio(t, total("floor")),
                    ratio(t, total("gauth")),
                    ratio(t, total("oath"))
                );
            }
            Err(e) => {
                let _ = writeln!(md, "| {name} | not measured: {e} | | | | | |");
            }
        }
    }
    if let Err(e) = daemon {
        let _ = writeln!(md, "\ndaemon side not measured: {e}");
    }
    md
}

#[cfg(test)]
mod tests {
    #[test]
    fn totals_are_read_from_the_callgrind_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.out");
        std::fs::write(&f, "events: Ir\nfn=main\n1 5\ntotals: 865195\n").unwrap();
        assert_eq!(super::instructions(&f), Some(865195));
        std::fs::write(&f, "events: Ir\nsummary: 42\n").unwrap();
        assert_eq!(super::instructions(&f), Some(42));
        std::fs::write(&f, "events: Ir\n").unwrap();
        assert_eq!(super::instructions(&f), None);
    }
}
