//! The package under a real systemd: PID 1 of a Debian 12 container
//! (tests/src/container.rs), the .deb installed with `dpkg -i` on a minimal
//! Debian 12 that has only its dependencies. Checks what only systemd can show: Type=notify readiness, reload
//! through RELOADING=1/READY=1, socket activation, journald fields, the
//! sandbox letting the daemon do its job, the exposure score, an sshd login
//! with the shipped PAM and sshd examples, and `dpkg -r` / `dpkg -P` leaving
//! no unit, socket or file behind.
//!
//! Nothing here touches the host's smsotp install, if there is one.
//!
//! The checks never count sockets: the socket unit may list more than one
//! ListenStream (a root-only socket). Extend `SOCKET_UNIT_PATHS` below when
//! the package ships another.

use smsotp_tests::container::{self, Container};
use smsotp_tests::debpkg;
use smsotp_tests::http_capture::HttpCapture;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The socket paths whose absence after `dpkg -r` the test asserts.
const SOCKET_UNIT_PATHS: &[&str] = &["/run/smsotp/smsotpd.sock", "/run/smsotp/root.sock"];
const SERVICE: &str = "smsotp-test";
const CONFIG: &str = "/etc/smsotp/smsotpd.toml";

fn installed(tag: &str) -> Option<Container> {
    if container::skip(tag) {
        return None;
    }
    let c = Container::boot(tag);
    debpkg::install(&c);
    // The installed module by its bare name, after a password step that
    // always succeeds: the code is what is under test.
    c.write(
        &format!("/etc/pam.d/{SERVICE}"),
        "auth required pam_permit.so\nauth required pam_smsotp.so timeout=15\n\
         account required pam_permit.so\n",
        0o644,
    );
    Some(c)
}

fn add_user(c: &Container, name: &str, mobile: &str) {
    c.sh(&format!(
        "id {name} >/dev/null 2>&1 || useradd -m {name}; \
         printf '%s = \"%s\"\\n' {name} '{mobile}' >> /etc/smsotp/users.toml"
    ));
}

/// Waits for systemd (PID 1) to have logged each of `messages`, in order,
/// about `unit` (debug level: "Got notification message ... (READY=1)").
fn wait_for_pid1_log(c: &Container, unit: &str, messages: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let logged: Vec<String> = c
            .journal(&["_PID=1", &format!("UNIT={unit}")])
            .iter()
            .filter_map(|e| e["MESSAGE"].as_str().map(str::to_string))
            .collect();
        let mut want = messages.iter().peekable();
        for line in &logged {
            if want.peek().is_some_and(|m| line.contains(*m)) {
                want.next();
            }
        }
        if want.peek().is_none() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "systemd did not log {messages:?} for {unit}; it logged:\n{}",
            logged.join("\n")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn notify_reload_journal_sandbox_score_and_clean_purge() {
    let Some(c) = installed("unit") else { return };
    // postinst starts the socket and the daemon (which asks for nothing
    // until a PAM stack names the module).
    for unit in ["smsotpd.socket", "smsotpd-root.socket", "smsotpd.service"] {
        assert_eq!(
            c.show(unit, "ActiveState"),
            "active",
            "{unit} after install"
        );
    }
    // From scratch: no socket unit, the service binds its own.
    c.sh("systemctl disable --now smsotpd.socket smsotpd-root.socket smsotpd.service");
    add_user(&c, "alice", "+15550001111");

    // Type=notify: `enable --now` returns once READY=1 arrived.
    let started = Instant::now();
    c.sh("systemctl enable --now smsotpd");
    eprintln!(
        "systemctl enable --now smsotpd took {:?}",
        started.elapsed()
    );
    assert_eq!(c.show("smsotpd", "Type"), "notify");
    assert_eq!(c.show("smsotpd", "ActiveState"), "active");
    assert_eq!(c.show("smsotpd", "SubState"), "running");
    // Active only from READY=1 on, which comes after the process started.
    let exec: u64 = c
        .show("smsotpd", "ExecMainStartTimestampMonotonic")
        .parse()
        .expect("exec ts");
    let active: u64 = c
        .show("smsotpd", "ActiveEnterTimestampMonotonic")
        .parse()
        .expect("active ts");
    assert!(exec > 0 && active > exec, "exec {exec}, active {active}");
    assert_eq!(
        c.show("smsotpd.socket", "UnitFileState"),
        "enabled",
        "Also=smsotpd.socket"
    );

    let sent = debpkg::sent(&c);
    debpkg::login(&c, SERVICE, "alice", None, || debpkg::next_code(&c, sent));

    // Audit events as journal fields of the unit.
    for event in ["code_sent", "verified"] {
        let entries = c.journal(&[
            &format!("SMSOTP_EVENT={event}"),
            "_SYSTEMD_UNIT=smsotpd.service",
        ]);
        assert!(
            entries.iter().any(|e| e["SMSOTP_USER"] == "alice"),
            "no SMSOTP_EVENT={event} SMSOTP_USER=alice in the journal: {entries:?}"
        );
    }

    // Reload: SIGHUP, RELOADING=1 then READY=1, same process, new users in
    // effect. systemd logs each notification at debug level.
    let pid = c.show("smsotpd", "MainPID");
    c.sh("systemd-analyze log-level debug");
    add_user(&c, "bob", "+15550002222");
    c.sh("systemctl reload smsotpd");
    wait_for_pid1_log(&c, "smsotpd.service", &["(RELOADING=1)", "(READY=1)"]);
    c.sh("systemd-analyze log-level info");
    assert_eq!(c.show("smsotpd", "MainPID"), pid, "reload must not restart");
    assert_eq!(c.show("smsotpd", "ActiveState"), "active");
    let sent = debpkg::sent(&c);
    debpkg::login(&c, SERVICE, "bob", None, || debpkg::next_code(&c, sent));

    // The sandbox: no capabilities, no new privileges, state written.
    let status = c.sh(&format!("cat /proc/{pid}/status"));
    assert!(status.contains("CapEff:\t0000000000000000"), "{status}");
    assert!(status.contains("NoNewPrivs:\t1"), "{status}");
    c.sh("ls /var/lib/smsotp | grep -v outbox | grep .");
    // ...and nothing more: in the daemon's own mount namespace even uid 0
    // cannot write its config, /etc or /usr, and /home is empty.
    let in_daemon = |cmd: &str| {
        c.run(&["nsenter", "-t", &pid, "-m", "sh", "-c", cmd])
            .status
            .success()
    };
    assert!(in_daemon(
        "touch /var/lib/smsotp/.w && rm /var/lib/smsotp/.w"
    ));
    assert!(
        !in_daemon("touch /etc/smsotp/.w"),
        "/etc/smsotp writable for the daemon"
    );
    assert!(!in_daemon("touch /etc/.w"), "/etc writable for the daemon");
    assert!(!in_daemon("touch /usr/.w"), "/usr writable for the daemon");
    assert!(
        in_daemon("test -z \"$(ls -A /home 2>/dev/null)\""),
        "/home visible"
    );

    let score = c.sh("systemd-analyze security --no-pager smsotpd.service | tail -1");
    let level: f64 = score
        .split(':')
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in {score:?}"));
    eprintln!("inside the container: {}", score.trim());
    assert!(level <= 2.0, "{score}");

    // dpkg -r: programs, units and sockets go, configuration stays.
    c.sh("dpkg -r smsotp");
    for unit in ["smsotpd.service", "smsotpd.socket", "smsotpd-root.socket"] {
        assert_ne!(
            c.show(unit, "ActiveState"),
            "active",
            "{unit} survived dpkg -r"
        );
    }
    for sock in SOCKET_UNIT_PATHS {
        assert!(!c.path(sock).exists(), "{sock} still there after dpkg -r");
    }
    assert!(c.path(CONFIG).exists(), "dpkg -r keeps conffiles");

    // dpkg -P: nothing of smsotp on disk or loaded in systemd.
    c.sh("dpkg -P smsotp");
    let left = debpkg::leftovers(&c);
    assert!(left.is_empty(), "purge left: {left:?}");
    let units = c.sh("systemctl list-units --all --no-legend 'smsotpd*'");
    assert!(units.trim().is_empty(), "units left after purge: {units}");
}

#[test]
fn socket_activation_and_an_http_provider_on_loopback() {
    let Some(c) = installed("sock") else { return };
    let capture = c.in_netns(|| HttpCapture::start(200, "{\"ok\":true}"));
    add_user(&c, "carol", "+15550003333");
    c.sh(&format!(
        "sed -i '/^\\[\\[provider\\]\\]/,$d' {CONFIG}; cat >> {CONFIG} <<'EOF'\n\
         [[provider]]\ntype = \"http\"\nurl = \"{}\"\nmethod = \"POST\"\ncontent_type = \"json\"\n\
         payload = '{{\"to\": {{{{mobile}}}}, \"text\": {{{{body}}}}}}'\nEOF",
        capture.url("/sms")
    ));
    // postinst started both; with the service stopped, the socket stays.
    c.sh("systemctl stop smsotpd.service");
    assert_eq!(c.show("smsotpd.service", "ActiveState"), "inactive");
    for unit in ["smsotpd.socket", "smsotpd-root.socket"] {
        assert_eq!(c.show(unit, "ActiveState"), "active", "{unit}");
        assert!(!c.show(unit, "Listen").is_empty(), "{unit}");
    }

    // The first connection (the login) starts the daemon.
    let text = debpkg::login(&c, SERVICE, "carol", None, || {
        let req = capture
            .wait_for(1, Duration::from_secs(20))
            .pop()
            .expect("a request");
        let body = req.json();
        assert_eq!(body["to"], "+15550003333");
        smsotp_tests::outbox::extract_code(body["text"].as_str().unwrap_or(""))
            .expect("code in the SMS")
    });
    eprintln!("{text}");
    assert_eq!(c.show("smsotpd.service", "ActiveState"), "active");
    // The module (root) connected to the root-only socket's unit.
    let triggered = c.show("smsotpd.service", "TriggeredBy");
    assert!(
        triggered.contains("smsotpd.socket") && triggered.contains("smsotpd-root.socket"),
        "{triggered}"
    );
}

#[test]
fn http_provider_without_the_ca_bundle_says_why() {
    let Some(c) = installed("noca") else { return };
    c.sh(&format!(
        "mv /etc/ssl/certs /root/; \
         sed -i '/^\\[\\[provider\\]\\]/,$d' {CONFIG}; cat >> {CONFIG} <<'EOF'\n\
         [[provider]]\nname = \"gw\"\ntype = \"http\"\nmethod = \"GET\"\nurl = \"http://127.0.0.1:9/sms?to=$ctx.num&text=$ctx.msg\"\nEOF"
    ));
    assert!(!c.run(&["systemctl", "restart", "smsotpd"]).status.success());
    let log: Vec<String> = c
        .journal(&["_SYSTEMD_UNIT=smsotpd.service"])
        .iter()
        .filter_map(|e| e["MESSAGE"].as_str().map(str::to_string))
        .collect();
    let refusal = log
        .iter()
        .find(|l| l.contains("ca-certificates"))
        .unwrap_or_else(|| panic!("the refusal must name the missing package: {log:?}"));
    eprintln!("{refusal}");
}

/// Answers OpenSSH's keyboard-interactive prompts (SSH_ASKPASS_REQUIRE=
/// force): the password at once, the code once the test has put it in
/// /root/code. Every prompt is kept in /root/prompts.
const ASKPASS: &str = "#!/bin/sh\necho \"$1\" >> /root/prompts\ncase \"$1\" in\n\
    *assword*) echo ssh-pass-1 ;;\n\
    *) i=0; while [ ! -s /root/code ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done; cat /root/code ;;\n\
    esac\n";

#[test]
fn ssh_login_with_the_shipped_pam_and_sshd_examples() {
    let Some(c) = installed("ssh") else { return };
    add_user(&c, "dave", "+15550004444");
    c.sh("echo dave:ssh-pass-1 | chpasswd; systemctl reload smsotpd; \
          cp /usr/share/doc/smsotp/examples/pam.d-sshd /etc/pam.d/sshd; \
          cp /usr/share/doc/smsotp/examples/sshd_config.d-smsotp.conf /etc/ssh/sshd_config.d/smsotp.conf; \
          systemctl start ssh");
    c.write("/root/askpass", ASKPASS, 0o755);
    let sent = debpkg::sent(&c);
    let ssh = c
        .command("ssh")
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "PreferredAuthentications=keyboard-interactive",
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            "ConnectTimeout=10",
            "dave@127.0.0.1",
            "echo logged-in-as-$(id -un)",
        ])
        .env("HOME", "/root")
        .env("SSH_ASKPASS", "/root/askpass")
        .env("SSH_ASKPASS_REQUIRE", "force")
        .env("DISPLAY", "none")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ssh");
    let code = debpkg::next_code(&c, sent);
    c.write("/root/code", &format!("{code}\n"), 0o600);
    let out = ssh.wait_with_output().expect("ssh");
    let prompts = std::fs::read_to_string(c.path("/root/prompts")).unwrap_or_default();
    assert!(
        out.status.success(),
        "ssh failed ({}):\n{}{}\nprompts:\n{prompts}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("logged-in-as-dave"));
    // pam_unix's password first, then the code: both through the
    // installed module, the shipped pam.d and sshd_config.d examples.
    let password = prompts.find("assword").expect("password prompt");
    let code_prompt = prompts.find("Code sent to").expect("code prompt");
    assert!(password < code_prompt, "{prompts}");
}
