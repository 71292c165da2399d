//! Numbers from LDAP (issue 11) against a real slapd on 127.0.0.1, through
//! real libpam, the built module and the real daemon: a number only in the
//! directory gets the code (in E.164), national formats and attribute
//! preference, injection-shaped names, an outage (cache within the TTL,
//! denied after, recovered), TLS against a private CA, case variants.

use smsotp_tests::ctl::Ctl;
use smsotp_tests::daemon::{toml_str, Daemon, DaemonBuilder};
use smsotp_tests::libpam::{self, Outcome, PAM_AUTHINFO_UNAVAIL, PAM_SUCCESS};
use smsotp_tests::outbox::Outbox;
use smsotp_tests::pamd::PamConfDir;
use smsotp_tests::slapd::{self, Slapd, Tls};
use smsotp_tests::users::TestUser;
use std::process::Command;
use std::time::{Duration, Instant};

const SERVICE: &str = "smsotp-dir";

/// `[directory]` for `url` with GB as the default country; `extra` lines
/// are added as they are.
fn with_directory(url: &str, extra: &[&str]) -> DaemonBuilder {
    let mut b = Daemon::builder()
        .section("directory", &format!("url = {}", toml_str(url)))
        .section(
            "directory",
            &format!("base_dn = {}", toml_str(slapd::PEOPLE)),
        )
        .section("directory", "default_country = \"GB\"");
    for line in extra {
        b = b.section("directory", line);
    }
    b
}

/// One login answering every code prompt with the newest code; other
/// prompts get no answer.
fn login(user: &str, pamd: &PamConfDir, outbox: &Outbox) -> Outcome {
    libpam::authenticate(SERVICE, user, pamd.path(), |p| {
        p.text
            .starts_with("Code sent to ")
            .then(|| outbox.last().code())
    })
}

fn service(d: &Daemon) -> PamConfDir {
    let pamd = PamConfDir::new();
    pamd.smsotp_service(SERVICE, &d.socket(), "timeout=15");
    pamd
}

fn assert_logged_in(o: &Outcome) {
    o.assert_code(PAM_SUCCESS);
    assert_eq!(o.transcript.code_prompts().len(), 1, "{o}");
}

/// Denied before any prompt: no code was asked for, none was sent.
fn assert_denied_unavailable(o: &Outcome) {
    o.assert_code(PAM_AUTHINFO_UNAVAIL);
    assert!(o.transcript.code_prompts().is_empty(), "{o}");
    assert!(
        o.transcript
            .errors()
            .iter()
            .any(|e| e.contains("directory that holds your phone number cannot be reached")),
        "{o}"
    );
}

/// `smsotpd --check-directory` with the test daemon's config.
fn check_directory(d: &Daemon, users: &[&str]) -> (bool, Vec<serde_json::Value>) {
    let mut cmd = Command::new(smsotp_tests::paths::smsotpd());
    cmd.arg("--config")
        .arg(d.config_path())
        .arg("--check-directory");
    for u in users {
        cmd.args(["--directory-user", u]);
    }
    let out = cmd.output().expect("run smsotpd --check-directory");
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    (out.status.success(), lines)
}

#[test]
fn a_number_only_in_the_directory_gets_the_code_in_e164() {
    let Some(ldap) = Slapd::start_new(None) else {
        return;
    };
    let user = TestUser::create();
    ldap.person(&user.name, &[("mobile", "+44 (0)20 7946 0123")]);
    let d = with_directory(&ldap.url(), &[]).start();
    let pamd = service(&d);
    let outbox = d.outbox();

    let t = Instant::now();
    let o = login(&user.name, &pamd, &outbox);
    let first = t.elapsed();
    assert_logged_in(&o);
    let sent = outbox.read();
    assert_eq!(sent.len(), 1, "{sent:#?}");
    // Figures only (never asserted): a login that connects, binds and
    // searches, then one answered from the cache.
    let t = Instant::now();
    assert_logged_in(&login(&user.name, &pamd, &outbox));
    eprintln!(
        "login with a directory lookup {first:?}, from the cache {:?}",
        t.elapsed()
    );
    assert_eq!(sent[0].to, "+442079460123");
    assert!(
        o.transcript.code_prompts()[0].contains("********0123"),
        "{o}"
    );

    let status = Ctl::new(&d.root_socket())
        .run(&["--json", "status", &user.name])
        .status();
    assert_eq!(outbox.count(), 2);
    assert_eq!(status.mobile_source, "directory");
    assert_eq!(status.mobile.as_deref(), Some("********0123"));
    d.assert_log_clean(&[]);
    assert!(!d.log().contains("7946"), "{}", d.log());
}

#[test]
fn national_formats_are_normalised_and_attributes_read_in_order() {
    let Some(ldap) = Slapd::start_new(None) else {
        return;
    };
    let both = TestUser::create();
    let phone_only = TestUser::create();
    let bad_mobile = TestUser::create();
    let unreadable = TestUser::create();
    ldap.person(
        &both.name,
        &[
            ("mobile", "(0)20 7946 0001"),
            ("telephoneNumber", "+49 30 1234567"),
        ],
    );
    ldap.person(&phone_only.name, &[("telephoneNumber", "0049 30 7654321")]);
    ldap.person(
        &bad_mobile.name,
        &[
            ("mobile", "ask reception"),
            ("telephoneNumber", "020 7946 0002"),
        ],
    );
    ldap.person(&unreadable.name, &[("mobile", "0207 946")]);
    let d = with_directory(&ldap.url(), &[]).start();
    let pamd = service(&d);
    let outbox = d.outbox();
    for (user, want) in [
        (&both, "+442079460001"),
        (&phone_only, "+49307654321"),
        (&bad_mobile, "+442079460002"),
    ] {
        let o = login(&user.name, &pamd, &outbox);
        assert_logged_in(&o);
        assert_eq!(outbox.last().to, want, "{}", user.name);
    }
    assert_eq!(outbox.count(), 3);

    // Not a number at all: no number (the default no_mobile denies), and
    // nothing is sent to it.
    let o = login(&unreadable.name, &pamd, &outbox);
    assert_ne!(o.code, PAM_SUCCESS, "{o}");
    assert!(o.transcript.code_prompts().is_empty(), "{o}");
    assert_eq!(outbox.count(), 3);
    // Said once (cached for the period), masked.
    let _ = login(&unreadable.name, &pamd, &outbox);
    let log = d.log();
    assert_eq!(
        log.matches("directory_unreadable_number").count(),
        1,
        "{log}"
    );
    assert!(log.contains("mobile=***7 946"), "{log}");
    assert!(!log.contains("0207 946"), "{log}");

    // The configured order decides: telephoneNumber first.
    let d2 = with_directory(
        &ldap.url(),
        &["attributes = [\"telephoneNumber\", \"mobile\"]"],
    )
    .start();
    let pamd2 = service(&d2);
    let outbox2 = d2.outbox();
    assert_logged_in(&login(&both.name, &pamd2, &outbox2));
    assert_eq!(outbox2.last().to, "+49301234567");
}

#[test]
fn injection_shaped_names_find_nothing_and_send_nothing() {
    let Some(ldap) = Slapd::start_new(None) else {
        return;
    };
    let victim = TestUser::create();
    ldap.person(&victim.name, &[("mobile", "+44 20 7946 0999")]);
    let d = with_directory(&ldap.url(), &["negative_cache_seconds = 0"]).start();
    let pamd = service(&d);
    let outbox = d.outbox();
    let names = ["*)(uid=*", "*", "x)(|(uid=*", "a\\2a", "a\\*"];
    for name in names {
        let o = login(name, &pamd, &outbox);
        assert_ne!(o.code, PAM_SUCCESS, "{name}: {o}");
        assert!(o.transcript.code_prompts().is_empty(), "{name}: {o}");
    }
    assert_eq!(outbox.count(), 0);

    // The directory itself, past the NSS gate: an escaped `*` is a
    // literal, so nobody matches (a wildcard would match the victim).
    let (ok, lines) = check_directory(&d, &names);
    assert!(!ok);
    assert_eq!(lines[0]["ok"], true, "{lines:?}");
    for (i, name) in names.iter().enumerate() {
        let line = &lines[i + 1];
        assert_eq!(line["user"], *name);
        assert_eq!(line["ok"], false, "{line}");
        assert_eq!(line["detail"], "no entry or no number attribute", "{line}");
    }
    let (ok, lines) = check_directory(&d, &[&victim.name]);
    assert!(ok, "{lines:?}");
    assert_eq!(lines[1]["detail"], "number ********0999");
}

#[test]
fn an_outage_uses_the_cache_within_the_ttl_then_denies_then_recovers() {
    let Some(mut ldap) = Slapd::start_new(None) else {
        return;
    };
    let user = TestUser::create();
    ldap.person(&user.name, &[("mobile", "+44 20 7946 0777")]);
    let ttl = Duration::from_secs(4);
    // `no_mobile = "skip"`: an outage must still deny, never skip.
    let d = with_directory(&ldap.url(), &["cache_seconds = 4", "timeout_seconds = 2"])
        .section("policy", "no_mobile = \"skip\"")
        .start();
    let pamd = service(&d);
    let outbox = d.outbox();

    assert_logged_in(&login(&user.name, &pamd, &outbox));
    let cached_at = Instant::now();
    ldap.stop();
    let o = login(&user.name, &pamd, &outbox);
    assert!(
        cached_at.elapsed() < ttl,
        "the machine is too slow for this TTL"
    );
    assert_logged_in(&o);
    assert_eq!(outbox.count(), 2);

    std::thread::sleep(ttl.saturating_sub(cached_at.elapsed()) + Duration::from_millis(300));
    let t = Instant::now();
    let o = login(&user.name, &pamd, &outbox);
    let denied_in = t.elapsed();
    assert_denied_unavailable(&o);
    assert_eq!(
        outbox.count(),
        2,
        "nothing sent while the directory is down"
    );
    assert!(d.log().contains("directory_unavailable"), "{}", d.log());
    let status = Ctl::new(&d.root_socket())
        .run(&["--json", "status", &user.name])
        .status();
    assert_eq!(status.mobile_source, "directory unreachable");
    eprintln!("denied with slapd down in {denied_in:?}");

    ldap.start();
    assert_logged_in(&login(&user.name, &pamd, &outbox));
    assert_eq!(outbox.count(), 3);
    assert_eq!(outbox.last().to, "+442079460777");
}

#[test]
fn a_directory_that_never_answers_denies_within_the_timeout() {
    // Accepts connections and says nothing: a hung server.
    let hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ldap://127.0.0.1:{}", hole.local_addr().unwrap().port());
    let user = TestUser::create();
    let d = with_directory(&url, &["timeout_seconds = 1"])
        .section("policy", "no_mobile = \"skip\"")
        .start();
    let pamd = service(&d);
    let outbox = d.outbox();
    let t = Instant::now();
    let o = login(&user.name, &pamd, &outbox);
    let took = t.elapsed();
    assert_denied_unavailable(&o);
    assert_eq!(outbox.count(), 0);
    assert!(took < Duration::from_secs(5), "took {took:?}");
    eprintln!("denied against a silent server in {took:?}");
    drop(hole);
}

#[test]
fn tls_and_starttls_with_the_private_ca_pass_and_a_wrong_ca_fails() {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, SanType};
    let ca = |name: &str| {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(rcgen::DnType::CommonName, name);
        CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap()
    };
    let (good, other) = (ca("smsotp directory CA"), ca("someone else"));
    let mut leaf = CertificateParams::new(Vec::<String>::new()).unwrap();
    leaf.subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
    let key = KeyPair::generate().unwrap();
    let cert = leaf.signed_by(&key, &good).unwrap();
    let tls = Tls {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    };
    let Some(ldap) = Slapd::start_new(Some(tls)) else {
        return;
    };
    let user = TestUser::create();
    ldap.person(&user.name, &[("mobile", "+44 20 7946 0555")]);

    let files = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        use std::os::unix::fs::PermissionsExt;
        let p = files.path().join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        p.to_string_lossy().into_owned()
    };
    let good_ca = write("good.pem", &good.pem());
    let other_ca = write("other.pem", &other.pem());
    let password = write("bind.pw", &format!("{}\n", slapd::BIND_PW));
    let bind = [
        format!("bind_dn = {}", toml_str(slapd::BIND_DN)),
        format!("bind_password_file = {}", toml_str(&password)),
    ];
    let run = |url: &str, ca: &str, starttls: bool| {
        let mut extra = vec![format!("ca_file = {}", toml_str(ca))];
        extra.extend(bind.iter().cloned());
        if starttls {
            extra.push("starttls = true".into());
        }
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let d = with_directory(url, &extra).start();
        let pamd = service(&d);
        let outbox = d.outbox();
        let o = login(&user.name, &pamd, &outbox);
        let (_, lines) = check_directory(&d, &[]);
        (o, outbox.count(), lines[0].clone(), d)
    };

    let (o, sent, check, d) = run(&ldap.ldaps_url(), &good_ca, false);
    assert_logged_in(&o);
    assert_eq!(sent, 1);
    assert_eq!(check["tls"], "ldaps", "{check}");
    assert_eq!(check["ok"], true, "{check}");
    assert!(!d.log().contains(slapd::BIND_PW));

    let (o, sent, check, _) = run(&ldap.url(), &good_ca, true);
    assert_logged_in(&o);
    assert_eq!(sent, 1);
    assert_eq!(check["tls"], "starttls", "{check}");

    for (url, starttls) in [(ldap.ldaps_url(), false), (ldap.url(), true)] {
        let (o, sent, check, _) = run(&url, &other_ca, starttls);
        assert_denied_unavailable(&o);
        assert_eq!(sent, 0);
        assert_eq!(check["ok"], false, "{check}");
        let detail = check["detail"].as_str().unwrap();
        assert!(
            detail.contains("certificate") || detail.contains("UnknownIssuer"),
            "{detail}"
        );
    }
}

#[test]
fn a_case_variant_of_a_name_is_refused_not_given_the_number() {
    let Some(ldap) = Slapd::start_new(None) else {
        return;
    };
    let user = TestUser::create();
    // uid matching is case-insensitive in the directory (caseIgnoreMatch).
    ldap.person(&user.name, &[("mobile", "+44 20 7946 0444")]);
    let d = with_directory(&ldap.url(), &[]).start();
    let pamd = service(&d);
    let outbox = d.outbox();
    let upper = user.name.to_uppercase();
    let (_, lines) = check_directory(&d, &[&upper]);
    assert_eq!(
        lines[1]["ok"], true,
        "the directory itself ignores case: {lines:?}"
    );

    // NSS (files) does not know the upper-case spelling: refused, no code.
    let o = login(&upper, &pamd, &outbox);
    assert_ne!(o.code, PAM_SUCCESS, "{o}");
    assert!(o.transcript.code_prompts().is_empty(), "{o}");
    assert_eq!(outbox.count(), 0);
    // The account's own spelling gets its number.
    assert_logged_in(&login(&user.name, &pamd, &outbox));
    assert_eq!(outbox.count(), 1);
}

#[test]
fn doctor_checks_the_connection_and_says_who_has_a_number() {
    let Some(mut ldap) = Slapd::start_new(None) else {
        return;
    };
    let user = TestUser::create();
    ldap.person(&user.name, &[("mobile", "+44 20 7946 0333")]);
    let d = with_directory(&ldap.url(), &[]).start();
    let doctor = |users: &[&str]| {
        let mut cmd = Command::new(smsotp_tests::paths::smsotpctl());
        cmd.arg("--config").arg(d.config_path());
        cmd.args(["--json", "doctor", "--no-sshd", "--no-daemon", "--smsotpd"]);
        cmd.arg(smsotp_tests::paths::smsotpd());
        for u in users {
            cmd.args(["--directory-user", u]);
        }
        let out = cmd.output().unwrap();
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let findings: Vec<serde_json::Value> = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["check"].as_str().unwrap().starts_with("directory."))
            .cloned()
            .collect();
        findings
    };
    let f = doctor(&[&user.name, "nobody-in-the-directory"]);
    assert_eq!(f.len(), 3, "{f:#?}");
    let by = |check: &str, subject: &str| {
        f.iter()
            .find(|x| x["check"] == check && x["subject"].as_str().unwrap().contains(subject))
            .unwrap_or_else(|| panic!("no {check} {subject}: {f:#?}"))
            .clone()
    };
    let conn = by("directory.connection", "ldap://127.0.0.1");
    assert_eq!(conn["severity"], "ok", "{conn}");
    let found = by("directory.user", &user.name);
    assert_eq!(found["severity"], "ok");
    assert_eq!(found["message"], "number ********0333");
    let missing = by("directory.user", "nobody-in-the-directory");
    assert_eq!(missing["severity"], "warning");

    ldap.stop();
    let f = doctor(&[]);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0]["check"], "directory.connection");
    assert_eq!(f[0]["severity"], "error");
    assert!(f[0]["fix"].is_string());
}
