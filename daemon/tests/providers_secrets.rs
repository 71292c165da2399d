//! Where credentials may live: a readable config with an inline secret is
//! refused (file, line and key named), `*_file` and systemd credentials
//! work, and errors about them never show the value. One test: it sets
//! `$CREDENTIALS_DIRECTORY` for the whole process.

mod providers_support;

use providers_support::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

const SID: &str = "AC0123456789abcdef0123456789abcdef";

fn write(path: &Path, text: &str, mode: u32) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn secrets_come_from_private_places_only() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("smsotpd.toml");
    let inline = format!(
        "[otp]\nlength = 6\n\n[[provider]]\ntype = \"twilio\"\naccount_sid = \"{SID}\"\n\
         auth_token = \"inline-tok-secret\"\nfrom = \"+15005550006\"\n"
    );

    // Inline secret in a world-readable file: refused, pointing at it.
    write(&cfg, &inline, 0o644);
    let e = smsotp_config::load(&cfg).unwrap_err().to_string();
    let want = format!("{}:7: provider[0].auth_token: is a credential written inline, but the file is readable by everyone (mode 0644)", cfg.display());
    assert!(e.starts_with(&want), "{e}");
    assert!(
        e.contains("auth_token_file or auth_token_credential"),
        "{e}"
    );
    assert!(!e.contains("inline-tok-secret"));
    // Group-readable too.
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o640)).unwrap();
    let e = smsotp_config::load(&cfg).unwrap_err().to_string();
    assert!(e.contains("readable by group root (mode 0640)"), "{e}");
    // 0600: accepted, and Debug of the whole config hides it.
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o600)).unwrap();
    let c = smsotp_config::load(&cfg).unwrap();
    assert!(!format!("{c:?}").contains("inline-tok-secret"));
    let p = smsotpd::providers::build(&c.providers[0]).unwrap();
    assert!(!format!("{:?}", smsotpd::providers::Chain::new(vec![p])).contains("inline-tok-secret"));

    // A credential-looking static header counts as inline too.
    write(
        &cfg,
        "[[provider]]\ntype = \"http\"\nurl = \"https://gw.example/x\"\npayload = '{\"t\": {{body}}}'\nheaders = { X-Api-Key = \"k\" }\n",
        0o644,
    );
    let e = smsotp_config::load(&cfg).unwrap_err().to_string();
    assert!(
        e.contains(":5: provider[0].headers.X-Api-Key: is a credential written inline"),
        "{e}"
    );
    assert!(e.contains("`auth` table"), "{e}");

    // No inline secret: a readable config is fine (the secret is elsewhere).
    let token = dir.path().join("tw.token");
    write(&token, "file-tok-secret\n", 0o600);
    write(
        &cfg,
        &format!(
            "[[provider]]\ntype = \"twilio\"\naccount_sid = \"{SID}\"\nauth_token_file = \"{}\"\nfrom = \"+15005550006\"\n",
            token.display()
        ),
        0o644,
    );
    let c = smsotp_config::load(&cfg).unwrap();
    smsotpd::providers::build(&c.providers[0]).unwrap();
    // ... but the secret file itself must be private, and the error says
    // which config line names it.
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = smsotpd::providers::build(&c.providers[0])
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(&format!(
            "{}:4: provider[0].auth_token_file: {} is readable by everyone",
            cfg.display(),
            token.display()
        )),
        "{e}"
    );
    assert!(!e.contains("file-tok-secret"));

    // systemd credentials: without $CREDENTIALS_DIRECTORY a clear error,
    // with it the file there.
    write(
        &cfg,
        &format!("[[provider]]\ntype = \"twilio\"\naccount_sid = \"{SID}\"\nauth_token_credential = \"twilio-token\"\nfrom = \"+15005550006\"\n"),
        0o644,
    );
    let c = smsotp_config::load(&cfg).unwrap();
    std::env::remove_var("CREDENTIALS_DIRECTORY");
    let e = smsotpd::providers::build(&c.providers[0])
        .unwrap_err()
        .to_string();
    assert!(e.contains("provider[0].auth_token_credential: $CREDENTIALS_DIRECTORY is not set; add LoadCredential=twilio-token:"), "{e}");
    let creds = tempfile::tempdir().unwrap();
    write(&creds.path().join("twilio-token"), "cred-tok-secret", 0o400);
    std::env::set_var("CREDENTIALS_DIRECTORY", creds.path());
    smsotpd::providers::build(&c.providers[0]).unwrap();
    std::env::remove_var("CREDENTIALS_DIRECTORY");
}

#[tokio::test]
async fn a_credential_read_at_build_is_what_is_sent() {
    let mock = Mock::start(|_| Reply::json(201, "{}")).await;
    let s = Setup::new();
    let token = s.secret_file("tok", "rotating-token-v1");
    let toml = format!(
        "[[provider]]\ntype = \"twilio\"\napi_base = \"{}\"\naccount_sid = \"{SID}\"\nauth_token_file = \"{}\"\nfrom = \"+15005550006\"\n",
        mock.base,
        token.display()
    );
    s.chain(&toml).send(&sms()).await.unwrap();
    // Rotation: a reload (a new chain) picks up the new token.
    s.secret_file("tok", "rotating-token-v2");
    s.chain(&toml).send(&sms()).await.unwrap();
    let auths: Vec<_> = mock
        .requests()
        .iter()
        .map(|r| r.header("authorization").unwrap().to_string())
        .collect();
    assert_ne!(auths[0], auths[1]);
}
