use crate::{DirectoryTls, NumberSource};
use std::path::Path;
use std::time::Duration;

fn parse(section: &str) -> Result<crate::DaemonConfig, String> {
    crate::parse(Path::new("/etc/smsotp/smsotpd.toml"), section).map_err(|e| e.to_string())
}

fn dir(section: &str) -> crate::DirectoryConfig {
    parse(section).unwrap().directory.unwrap()
}

const MINIMAL: &str =
    "[directory]\nurl = \"ldaps://ldap.example.com\"\nbase_dn = \"dc=example,dc=com\"\n";

#[test]
fn no_section_no_directory() {
    assert!(parse("").unwrap().directory.is_none());
}

#[test]
fn defaults_are_the_issue_s() {
    let d = dir(MINIMAL);
    assert_eq!(d.tls, DirectoryTls::Ldaps);
    assert_eq!(d.filter, "(uid={{user}})");
    assert_eq!(d.attributes, ["mobile", "telephoneNumber"]);
    assert_eq!(d.cache_ttl, Duration::from_secs(300));
    assert_eq!(d.negative_ttl, Duration::from_secs(30));
    assert_eq!(d.timeout, Duration::from_secs(4));
    assert_eq!(d.cache_entries, 10_000);
    assert!(d.bind_dn.is_none() && d.bind_password.is_none());
    assert_eq!(
        d.sources,
        [
            NumberSource::UsersFile,
            NumberSource::Enrolled,
            NumberSource::Directory
        ]
    );
}

#[test]
fn starttls_is_required_off_loopback() {
    let base = "base_dn = \"dc=x\"\n";
    let d = dir(&format!(
        "[directory]\nurl = \"ldap://ldap.example.com\"\n{base}"
    ));
    assert_eq!(d.tls, DirectoryTls::StartTls);
    let e = parse(&format!(
        "[directory]\nurl = \"ldap://ldap.example.com\"\nstarttls = false\n{base}"
    ))
    .unwrap_err();
    assert!(e.contains(":3: directory.starttls: cannot be false"), "{e}");
    for lo in ["ldap://127.0.0.1:3389", "ldap://[::1]", "ldap://localhost"] {
        let d = dir(&format!("[directory]\nurl = \"{lo}\"\n{base}"));
        assert_eq!(d.tls, DirectoryTls::Plain, "{lo}");
    }
    let d = dir(&format!(
        "[directory]\nurl = \"ldap://127.0.0.1\"\nstarttls = true\n{base}"
    ));
    assert_eq!(d.tls, DirectoryTls::StartTls);
    let e = parse(&format!(
        "[directory]\nurl = \"ldaps://h\"\nstarttls = true\n{base}"
    ))
    .unwrap_err();
    assert!(e.contains("ldaps:// is TLS already"), "{e}");
    for bad in [
        "ldapi:///",
        "http://h",
        "ldap://h/dc=x",
        "ldap://u@h",
        "not a url",
    ] {
        let e = parse(&format!("[directory]\nurl = \"{bad}\"\n{base}")).unwrap_err();
        assert!(e.contains(":2: directory.url: "), "{bad}: {e}");
    }
}

#[test]
fn bind_needs_both_halves_and_no_inline_password() {
    let e = parse(&format!("{MINIMAL}bind_dn = \"cn=smsotp,dc=x\"\n")).unwrap_err();
    assert!(
        e.contains("directory.bind_dn: needs bind_password_file"),
        "{e}"
    );
    let e = parse(&format!(
        "{MINIMAL}bind_password_file = \"/etc/smsotp/ldap\"\n"
    ))
    .unwrap_err();
    assert!(
        e.contains(":4: directory.bind_password_file: needs bind_dn"),
        "{e}"
    );
    let e = parse(&format!(
        "{MINIMAL}bind_dn = \"cn=s\"\nbind_password_file = \"rel\"\n"
    ))
    .unwrap_err();
    assert!(e.contains("must be an absolute path"), "{e}");
    let e = parse(&format!("{MINIMAL}bind_password = \"hunter2\"\n")).unwrap_err();
    assert!(e.contains("bind_password"), "{e}");
    assert!(!e.contains("hunter2"), "{e}");
    let d = dir(&format!(
        "{MINIMAL}bind_dn = \"cn=s\"\nbind_password_credential = \"ldap-bind\"\n"
    ));
    assert_eq!(
        d.bind_password.unwrap().key,
        "directory.bind_password_credential"
    );
}

#[test]
fn filter_must_be_one_filter_with_the_user() {
    for (bad, why) in [
        ("uid={{user}}", "one parenthesised"),
        ("(uid=alice)", "must contain {{user}}"),
        ("(&(uid={{user}})", "unbalanced"),
        ("(uid={{user}})))", "unbalanced"),
        ("(|(uid={{user}})(cn={{login}}))", "only the placeholder"),
    ] {
        let e = parse(&format!("{MINIMAL}filter = \"{bad}\"\n")).unwrap_err();
        assert!(e.contains(":4: directory.filter: "), "{bad}: {e}");
        assert!(e.contains(why), "{bad}: {e}");
    }
    let d = dir(&format!(
        "{MINIMAL}filter = \"(&(objectClass=inetOrgPerson)(|(uid={{{{user}}}})(mail={{{{user}}}}@x)))\"\n"
    ));
    assert!(d.filter.starts_with("(&(objectClass"));
}

#[test]
fn attributes_sources_country_and_ranges() {
    let e = parse(&format!("{MINIMAL}attributes = []\n")).unwrap_err();
    assert!(e.contains("1 to 8 attributes"), "{e}");
    let e = parse(&format!("{MINIMAL}attributes = [\"mobile)(x\"]\n")).unwrap_err();
    assert!(e.contains("is not an attribute name"), "{e}");
    let d = dir(&format!(
        "{MINIMAL}attributes = [\"telephoneNumber\", \"0.9.2342.19200300.100.1.41\"]\n"
    ));
    assert_eq!(d.attributes[1], "0.9.2342.19200300.100.1.41");

    let d = dir(&format!(
        "{MINIMAL}sources = [\"directory\", \"users.toml\"]\n"
    ));
    assert_eq!(
        d.sources,
        [NumberSource::Directory, NumberSource::UsersFile]
    );
    for (bad, why) in [
        ("[\"users.toml\"]", "must include \"directory\""),
        ("[\"directory\", \"directory\"]", "twice"),
        ("[\"ldap\"]", "is not a source"),
    ] {
        let e = parse(&format!("{MINIMAL}sources = {bad}\n")).unwrap_err();
        assert!(e.contains(why), "{bad}: {e}");
    }

    assert_eq!(
        dir(&format!("{MINIMAL}default_country = \"gb\"\n"))
            .default_country
            .as_deref(),
        Some("GB")
    );
    let e = parse(&format!("{MINIMAL}default_country = \"UK1\"\n")).unwrap_err();
    assert!(e.contains("two-letter ISO 3166"), "{e}");

    let e = parse(&format!("{MINIMAL}timeout_seconds = 30\n")).unwrap_err();
    assert!(
        e.contains("directory.timeout_seconds: must be between 1 and 5"),
        "{e}"
    );
    let e = parse(&format!(
        "{MINIMAL}cache_seconds = 10\nnegative_cache_seconds = 20\n"
    ))
    .unwrap_err();
    assert!(e.contains("must be between 0 and 10"), "{e}");
    let e = parse(&format!("{MINIMAL}cache_entries = 0\n")).unwrap_err();
    assert!(e.contains("directory.cache_entries"), "{e}");
    let e = parse("[directory]\nbase_dn = \"dc=x\"\n").unwrap_err();
    assert!(e.contains("directory.url: is required"), "{e}");
    let e = parse("[directory]\nurl = \"ldaps://h\"\n").unwrap_err();
    assert!(e.contains("directory.base_dn: is required"), "{e}");
}
