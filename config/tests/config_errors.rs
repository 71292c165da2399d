//! Every example parses; every mistake names file, line and key.

use smsotp_config::{parse, CodeKind, ContentType, HttpMethod, ProviderConfig, Users};
use std::path::Path;

fn err(text: &str) -> String {
    parse(Path::new("/etc/smsotp/smsotpd.toml"), text)
        .unwrap_err()
        .to_string()
}

#[test]
fn every_example_parses() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap() == "users.toml" {
            Users::load(&path).unwrap();
        } else {
            smsotp_config::load(&path).unwrap_or_else(|e| panic!("{e}"));
        }
        seen += 1;
    }
    assert!(seen >= 4, "examples missing from {}", dir.display());
}

#[test]
fn empty_config_means_defaults() {
    let c = parse(Path::new("x.toml"), "").unwrap();
    assert_eq!(c.socket, Path::new("/run/smsotp/smsotpd.sock"));
    assert_eq!(c.otp.length, 6);
    assert_eq!(c.otp.kind, CodeKind::Numeric);
    assert_eq!(c.otp.expiry.as_secs(), 300);
    assert_eq!((c.otp.max_attempts, c.otp.max_resends), (3, 3));
    assert!(matches!(&c.providers[..], [ProviderConfig::Outbox(_)]));
    assert!(!c.allow_user_self);
}

/// Issue 9, findings 1 and 3: root gets a socket of its own, and the
/// public one limits each non-root uid and every admin connection's life.
#[test]
fn connection_limits_and_the_root_socket() {
    let c = parse(Path::new("x.toml"), "").unwrap();
    assert_eq!(c.root_socket, Path::new("/run/smsotp/root.sock"));
    assert_eq!(c.max_connections_per_user, 4);
    assert_eq!(c.admin_lifetime.as_secs(), 60);
    let c = parse(
        Path::new("x.toml"),
        "root_socket = \"/run/x/r.sock\"\nmax_connections_per_user = 2\nadmin_lifetime_seconds = 5\n",
    )
    .unwrap();
    assert_eq!(c.root_socket, Path::new("/run/x/r.sock"));
    assert_eq!(c.max_connections_per_user, 2);
    assert_eq!(c.admin_lifetime.as_secs(), 5);
    let e = err("socket = \"/run/a.sock\"\nroot_socket = \"/run/a.sock\"\n");
    assert!(
        e.contains(":2: root_socket: must differ from `socket`"),
        "{e}"
    );
    let e = err("max_connections_per_user = 0\n");
    assert!(
        e.contains(":1: max_connections_per_user: must be between 1 and 1024, not 0"),
        "{e}"
    );
    let e = err("admin_lifetime_seconds = 1\n");
    assert!(
        e.contains("admin_lifetime_seconds: must be between 5 and 3600, not 1"),
        "{e}"
    );
    let e = err("root_socket = \"run/r.sock\"\n");
    assert!(e.contains("root_socket: must be an absolute path"), "{e}");
}

#[test]
fn unknown_key_names_line_and_key() {
    let e = err("socket = \"/x\"\n[otp]\nlenght = 8\n");
    assert!(
        e.starts_with("/etc/smsotp/smsotpd.toml:3: otp.lenght: unknown field `lenght`"),
        "{e}"
    );
}

#[test]
fn out_of_range_names_line_and_key() {
    let e = err("[otp]\nnumeric = true\nlength = 12\n");
    assert_eq!(
        e,
        "/etc/smsotp/smsotpd.toml:3: otp.length: must be between 4 and 10, not 12"
    );
    let e = err("[otp]\nmax_attempts = -1\n");
    assert!(
        e.contains(":2: otp.max_attempts: must be between 1 and 10, not -1"),
        "{e}"
    );
}

#[test]
fn wrong_type_names_line_and_key() {
    let e = err("[otp]\nlength = \"six\"\n");
    assert!(
        e.starts_with("/etc/smsotp/smsotpd.toml:2: otp.length: "),
        "{e}"
    );
}

#[test]
fn syntax_error_names_line() {
    let e = err("[otp\nlength = 6\n");
    assert!(e.starts_with("/etc/smsotp/smsotpd.toml:1"), "{e}");
}

#[test]
fn provider_errors_point_into_the_right_table() {
    let text = "[[provider]]\ntype = \"outbox\"\n\n[[provider]]\ntype = \"http\"\nurl = \"ftp://x/\"\npayload = \"{{body}}\"\n";
    let e = err(text);
    assert!(
        e.starts_with("/etc/smsotp/smsotpd.toml:6: provider[1].url: scheme must be http or https"),
        "{e}"
    );
    let e = err("[[provider]]\ntype = \"carrier-pigeon\"\n");
    assert!(
        e.contains(":2: provider[0].type: unknown variant `carrier-pigeon`"),
        "{e}"
    );
    let e = err("[[provider]]\ntype = \"http\"\nurl = \"http://x/\"\npayload = '{\"to\": {{mobile}}, \"t\": {{bdy}}}'\n");
    assert!(
        e.contains(":4: provider[0].payload: unknown placeholder {{bdy}}"),
        "{e}"
    );
    let e = err(
        "[[provider]]\ntype = \"http\"\nurl = \"http://x/\"\npayload = \"{{body}}\"\nheaders = { \"Bad Name\" = \"v\" }\n",
    );
    assert!(
        e.contains(":5: provider[0].headers.Bad Name: is not a valid HTTP header name"),
        "{e}"
    );
    let e = err("[[provider]]\ntype = \"http\"\nurl = \"http://x/\"\n");
    assert!(e.contains("provider[0].payload: is required"), "{e}");
    let e =
        err("[[provider]]\ntype = \"http\"\nmethod = \"GET\"\nurl = \"http://x/?to=$ctx.num\"\n");
    assert!(e.contains("never be sent"), "{e}");
}

#[test]
fn template_must_carry_the_code() {
    let e = err("[message]\ntemplate = \"hello {{user}}\"\n");
    assert_eq!(
        e,
        "/etc/smsotp/smsotpd.toml:2: message.template: must contain {{code}}"
    );
}

#[test]
fn http_provider_fields() {
    let text = "[[provider]]\ntype = \"http\"\nurl = \"http://127.0.0.1:9/sms\"\nmethod = \"put\"\ncontent_type = \"FORM\"\npayload = \"to={{ mobile }}&msg={{ body }}\"\nheaders = { Authorization = \"Basic a:b, c\" }\nsuccess_codes = [204]\ntimeout_seconds = 3\n";
    let c = parse(Path::new("x"), text).unwrap();
    let ProviderConfig::Http(h) = &c.providers[0] else {
        panic!()
    };
    assert_eq!(h.method, HttpMethod::Put);
    assert_eq!(h.content_type, ContentType::Form);
    assert_eq!(h.success_codes, vec![204]);
    assert_eq!(h.headers[0].value, "Basic a:b, c");
    assert!(
        !format!("{c:?}").contains("Basic a:b"),
        "header value leaked into Debug"
    );
}

#[test]
fn duplicate_provider_names_are_refused() {
    let e = err("[[provider]]\ntype = \"outbox\"\npath = \"/a\"\n[[provider]]\ntype = \"outbox\"\npath = \"/b\"\n");
    assert!(e.contains("two providers are named \"outbox\""), "{e}");
}

#[test]
fn service_sections_override_the_defaults() {
    let text = "[policy]\nno_mobile = \"skip\"\ngrace_seconds = 60\n[service.sudo]\ngrace_seconds = 300\n[service.cron]\nenabled = false\n";
    let c = parse(Path::new("x"), text).unwrap();
    let sshd = c.policy.for_service("sshd");
    assert_eq!(sshd.no_mobile, smsotp_config::NoMobile::Skip);
    assert_eq!(sshd.grace.as_secs(), 60);
    let sudo = c.policy.for_service("sudo");
    assert_eq!(sudo.grace.as_secs(), 300);
    assert_eq!(
        sudo.no_mobile,
        smsotp_config::NoMobile::Skip,
        "inherits [policy]"
    );
    assert!(!c.policy.for_service("cron").enabled);
    assert!(c.policy.for_service("cron").mandatory);
}

#[test]
fn service_sections_reach_the_family() {
    let text = "[policy]\nenabled = false\n[service.sudo]\nenabled = true\n[service.sudo-ws]\ngrace_seconds = 9\n";
    let c = parse(Path::new("x"), text).unwrap();
    assert!(c.policy.for_service("sudo-i").enabled, "sudo -i is sudo");
    assert_eq!(c.policy.section_for("sudo-i"), Some("sudo"));
    assert_eq!(
        c.policy.section_for("sudo-ws"),
        Some("sudo-ws"),
        "exact first"
    );
    assert!(
        !c.policy.for_service("sudo-ws").enabled,
        "an exact section inherits [policy], not the family"
    );
    assert!(!c.policy.for_service("su-l").enabled);
    assert_eq!(c.policy.section_for("su-l"), None);
}

#[test]
fn policy_errors_name_line_and_key() {
    let e = err("[service.sshd]\nno_mobile = \"maybe\"\n");
    assert_eq!(e, "/etc/smsotp/smsotpd.toml:2: service.sshd.no_mobile: must be deny, skip or enroll, not \"maybe\"");
    let e = err("[policy]\ntrusted_networks = [\"10.0.0.0/40\"]\n");
    assert!(
        e.contains(":2: policy.trusted_networks: \"10.0.0.0/40\" is not an address or CIDR"),
        "{e}"
    );
    let e = err("[send_budget]\nallowed_countries = [\"44\"]\n");
    assert!(e.contains(":2: send_budget.allowed_countries:"), "{e}");
    let e = err("[lockout]\nduration_seconds = 600\nmax_duration_seconds = 60\n");
    assert!(
        e.contains(":3: lockout.max_duration_seconds: must not be shorter"),
        "{e}"
    );
    let e = err("[policy]\nsend_to_entered_number = true\n");
    assert!(
        e.contains("policy.send_to_entered_number: only makes sense"),
        "{e}"
    );
    let e = err("[service.sshd]\nmandatry = false\n");
    assert!(
        e.contains(":2: service.sshd.mandatry: unknown field"),
        "{e}"
    );
}

#[test]
fn unknown_key_inside_a_provider_table_is_found() {
    // serde buffers tagged tables, so toml's own span covers the whole
    // [[provider]]; the key must still be named with its own line.
    let e = err("socket = \"/x\"\n\n[[provider]]\ntype = \"outbox\"\npath = \"/tmp/o\"\ncolour = \"blue\"\n");
    assert!(
        e.starts_with("/etc/smsotp/smsotpd.toml:6: provider[0].colour: unknown field `colour`"),
        "{e}"
    );
    let e = err("[[provider]]\ntype = \"outbox\"\npath = \"/a\"\n\n[[provider]]\ntype = \"outbox\"\nname = \"b\"\npath = \"/b\"\nsize = 3\n");
    assert!(e.contains(":9: provider[1].size: unknown field"), "{e}");
}

#[test]
fn a_database_password_inline_needs_a_private_config() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("smsotpd.toml");
    std::fs::write(
        &cfg,
        "[store]\nbackend = \"postgres\"\nurl = \"postgresql://smsotp@127.0.0.1/smsotp?sslmode=disable\"\npassword = \"db-pw-secret\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = smsotp_config::load(&cfg).unwrap_err().to_string();
    assert!(
        e.contains(":4: store.password: is a credential written inline, but the file is readable by everyone"),
        "{e}"
    );
    assert!(!e.contains("db-pw-secret"), "{e}");
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o600)).unwrap();
    let c = smsotp_config::load(&cfg).unwrap();
    assert!(!format!("{c:?}").contains("db-pw-secret"));
}

/// Issue 10: each store request's deadline, and whose sends the global
/// budget counts once hosts share a store.
#[test]
fn store_deadline_and_global_scope() {
    let c = parse(Path::new("x.toml"), "").unwrap();
    assert_eq!(c.store.timeout.as_secs(), 3);
    assert_eq!(c.send_budget.global_scope, smsotp_config::GlobalScope::Host);
    let c = parse(
        Path::new("x.toml"),
        "[store]\ntimeout_seconds = 5\n[send_budget]\nglobal_scope = \"fleet\"\n",
    )
    .unwrap();
    assert_eq!(c.store.timeout.as_secs(), 5);
    assert_eq!(
        c.send_budget.global_scope,
        smsotp_config::GlobalScope::Fleet
    );
    // Longer would eat the module's 20 s with the 15 s a send may take.
    let e = err("[store]\ntimeout_seconds = 6\n");
    assert!(
        e.contains("store.timeout_seconds: must be between 1 and 5, not 6"),
        "{e}"
    );
    let e = err("[send_budget]\nglobal_scope = \"world\"\n");
    assert!(
        e.contains("send_budget.global_scope: must be \"host\" or \"fleet\", not \"world\""),
        "{e}"
    );
}
