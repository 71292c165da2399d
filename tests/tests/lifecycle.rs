//! The daemon as a process: SIGHUP reloads config and users (and keeps the
//! old ones when the new ones are broken), SIGTERM stops it cleanly, and
//! `--check-config` validates without starting.

use smsotp_proto::{BeginRequest, Client, Request, Response};
use smsotp_tests::daemon::Daemon;
use smsotp_tests::{paths, require_root, unique_name};
use std::time::{Duration, Instant};

fn begin(socket: &std::path::Path, user: &str) -> Response {
    let mut c = Client::connect(socket, Duration::from_secs(5), "lifecycle").expect("connect");
    c.call(&Request::Begin(BeginRequest {
        user: user.into(),
        service: "lifecycle".into(),
        rhost: None,
        tty: None,
        command: None,
    }))
    .expect("begin")
}

fn signal(d: &Daemon, sig: libc::c_int) {
    let pid = d.pid().expect("daemon running") as libc::pid_t;
    // SAFETY: signalling our own child by pid.
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
}

/// Waits (bounded) until the log shows `needle`.
fn wait_log(d: &Daemon, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !d.log().contains(needle) {
        assert!(
            Instant::now() < deadline,
            "log never said {needle:?}:\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sighup_reloads_users_and_keeps_old_config_when_new_is_broken() {
    require_root("only root may begin for another user");
    let alice = unique_name("hup");
    let bob = unique_name("hupb");
    // Not +15551234567: that is the example number in the E.164 error text.
    let d = Daemon::builder().user(&alice, "+15550001111").start();
    assert_eq!(begin(&d.socket(), &bob), Response::NoMobile);

    // Add bob and reload.
    let users = d.dir().join("users.toml");
    let mut text = std::fs::read_to_string(&users).unwrap();
    text.push_str(&format!("{bob} = \"+15557654321\"\n"));
    std::fs::write(&users, &text).unwrap();
    signal(&d, libc::SIGHUP);
    wait_log(&d, "configuration reloaded");
    assert!(matches!(begin(&d.socket(), &bob), Response::Challenge(_)));

    // Break the users file: the reload fails loudly, the old map stays.
    std::fs::write(&users, "[users]\nmallory = \"not a number\"\n").unwrap();
    signal(&d, libc::SIGHUP);
    wait_log(&d, "reload failed");
    assert!(
        d.log().contains("users.mallory"),
        "the error names the key:\n{}",
        d.log()
    );
    assert!(matches!(begin(&d.socket(), &bob), Response::Challenge(_)));
    d.assert_log_clean(&[]);
}

#[test]
fn sigterm_stops_promptly_and_removes_the_socket() {
    require_root("the daemon fixture runs as root");
    let mut d = Daemon::builder().start();
    // A connection in the middle of a handshake must not hold the stop up.
    let _idle = std::os::unix::net::UnixStream::connect(d.socket()).unwrap();
    let started = Instant::now();
    signal(&d, libc::SIGTERM);
    while d.is_running() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "still running after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!d.socket().exists(), "socket left behind");
    assert!(d.log().contains("stopped"), "{}", d.log());
}

#[test]
fn check_config_validates_without_starting() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users.toml");
    std::fs::write(&users, "[users]\nalice = \"+15551234567\"\n").unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        format!("users_file = {users:?}\nsocket = \"/nonexistent/s.sock\"\n"),
    )
    .unwrap();
    let out = std::process::Command::new(paths::smsotpd())
        .arg("--config")
        .arg(&good)
        .arg("--check-config")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("OK (1 users"),
        "{out:?}"
    );
    assert!(!std::path::Path::new("/nonexistent/s.sock").exists());

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        format!("users_file = {users:?}\n[otp]\nlength = 99\n"),
    )
    .unwrap();
    let out = std::process::Command::new(paths::smsotpd())
        .arg("--config")
        .arg(&bad)
        .arg("--check-config")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml:3: otp.length: must be between 4 and 10, not 99"),
        "{err}"
    );
}

/// Starts the daemon as systemd would for smsotpd.socket: the listeners
/// as fds 3, 4, ... with LISTEN_FDS and LISTEN_PID. Returns the child
/// (stderr piped) once `probe` answers a hello.
fn activated_daemon(
    config: &std::path::Path,
    listeners: &[std::os::unix::net::UnixListener],
    probe: &std::path::Path,
) -> std::process::Child {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let fds: Vec<i32> = listeners.iter().map(|l| l.as_raw_fd()).collect();
    assert!(fds.len() <= 8, "at most 8 sockets");
    let mut cmd = std::process::Command::new("/bin/sh");
    // LISTEN_PID must be the daemon's own pid: sh exports its pid, then
    // execs the daemon in the same process.
    cmd.arg("-c")
        .arg(format!(
            "LISTEN_PID=$$ LISTEN_FDS={} exec \"$0\" --config \"$1\"",
            fds.len()
        ))
        .arg(paths::smsotpd())
        .arg(config)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    // SAFETY: between fork and exec only async-signal-safe calls (fcntl,
    // dup2). Each fd is first copied above 100 so that moving one to 3, 4,
    // ... cannot overwrite another still to be moved.
    unsafe {
        cmd.pre_exec(move || {
            let mut high = [0; 8];
            for (i, fd) in fds.iter().enumerate() {
                high[i] = libc::fcntl(*fd, libc::F_DUPFD, 100);
                if high[i] < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            for (i, fd) in high.iter().take(fds.len()).enumerate() {
                if libc::dup2(*fd, 3 + i as i32) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match Client::connect(probe, Duration::from_millis(500), "activation") {
            Ok(c) => {
                assert!(c.server().starts_with("smsotpd/"), "{}", c.server());
                return child;
            }
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "activated daemon never answered: {e}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// SIGTERM, then the exit status and everything it wrote to stderr.
fn stop_activated(mut child: std::process::Child) -> (std::process::ExitStatus, String) {
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    (status, err)
}

fn activation_config(dir: &std::path::Path) -> std::path::PathBuf {
    let users = dir.join("users.toml");
    std::fs::write(&users, "[users]\n").unwrap();
    let config = dir.join("smsotpd.toml");
    std::fs::write(
        &config,
        format!(
            "socket = {:?}\nroot_socket = {:?}\nusers_file = {users:?}\n[store]\npath = {:?}\n\
             [[provider]]\ntype = \"outbox\"\npath = {:?}\n",
            dir.join("activated.sock"),
            dir.join("root.sock"),
            dir.join("state.db"),
            dir.join("outbox.jsonl")
        ),
    )
    .unwrap();
    config
}

#[test]
fn socket_activation_serves_the_inherited_socket_and_leaves_it() {
    require_root("the root socket is root's");
    let dir = tempfile::tempdir().unwrap();
    let config = activation_config(dir.path());
    let sock = dir.path().join("activated.sock");
    let root = dir.path().join("root.sock");
    // What an smsotpd.socket from before the root socket does: one fd.
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let child = activated_daemon(&config, &[listener], &sock);
    // The daemon bound the root socket itself, root's alone.
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(&root).expect("root socket bound by the daemon");
    assert_eq!((meta.mode() & 0o777, meta.uid()), (0o600, 0));
    Client::connect(&root, Duration::from_secs(2), "activation").expect("root socket serves");
    let (status, err) = stop_activated(child);
    assert!(status.success(), "{status}: {err}");
    assert!(err.contains("socket_activated=true"), "{err}");
    assert!(sock.exists(), "the socket belongs to systemd and must stay");
    assert!(!root.exists(), "the daemon's own root socket must go");
}

/// smsotpd.socket with both ListenStream= lines: two fds, told apart by
/// the path each is bound to, whatever their order.
#[test]
fn socket_activation_with_both_sockets_tells_them_apart_by_path() {
    require_root("the root socket is root's");
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    // Others may enter: only the socket's own mode keeps them out.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = activation_config(dir.path());
    let sock = dir.path().join("activated.sock");
    let root = dir.path().join("root.sock");
    // Root's first, as a unit may list them.
    let root_listener = std::os::unix::net::UnixListener::bind(&root).unwrap();
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o600)).unwrap();
    let public_listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let child = activated_daemon(&config, &[root_listener, public_listener], &root);
    Client::connect(&sock, Duration::from_secs(2), "activation").expect("public socket serves");
    // uid 65534 cannot even connect to the root socket (mode 0600).
    let out = std::process::Command::new(paths::raw_client())
        .arg(&root)
        .arg("nobody")
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&out.stdout);
    assert!(line.contains("Permission denied"), "{line}");
    let (status, err) = stop_activated(child);
    assert!(status.success(), "{status}: {err}");
    assert!(!err.contains("not root's alone"), "{err}");
    assert!(sock.exists() && root.exists(), "both belong to systemd");
}
