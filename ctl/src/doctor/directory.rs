//! The `[directory]` checks: the daemon binary itself connects with the
//! configuration (`smsotpd --check-directory`: TLS, bind, a read of
//! base_dn, and each `--directory-user` looked up), so the doctor tests
//! exactly the code and trust store a login would use, and smsotpctl
//! needs no LDAP or TLS stack of its own.

use super::sshd::run_bounded_output;
use super::{DoctorArgs, Finding, Host, Severity};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Each lookup is bounded by the directory's own timeout (at most 5 s);
/// this covers the connection plus a few users.
const LIMIT: Duration = Duration::from_secs(60);

pub fn check(host: &Host, args: &DoctorArgs, config: &Path) -> Vec<Finding> {
    let subject = "directory".to_string();
    if !host.is_real_root() {
        return vec![Finding::new(
            "directory.skipped",
            Severity::Info,
            subject,
            "not checked with --root: the directory is reached from the running host",
        )];
    }
    if !args.smsotpd.exists() {
        return vec![Finding::new(
            "directory.skipped",
            Severity::Warning,
            subject,
            format!(
                "{} is missing, so the directory could not be checked",
                args.smsotpd.display()
            ),
        )
        .fix("install smsotpd or pass --smsotpd PATH")];
    }
    let mut cmd = Command::new(&args.smsotpd);
    cmd.arg("--config").arg(config).arg("--check-directory");
    for user in &args.directory_users {
        cmd.arg("--directory-user").arg(user);
    }
    // A failed check exits non-zero but still prints its lines.
    let text = match run_bounded_output(&mut cmd, LIMIT) {
        Ok((_, out, err)) => format!("{out}\n{err}"),
        Err(e) => e,
    };
    let lines: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    if lines.is_empty() {
        return vec![Finding::new(
            "directory.unchecked",
            Severity::Error,
            subject,
            format!(
                "`smsotpd --check-directory` printed no result: {}",
                text.trim()
            ),
        )];
    }
    lines.iter().map(finding).collect()
}

fn finding(line: &serde_json::Value) -> Finding {
    let ok = line["ok"].as_bool().unwrap_or(false);
    let detail = line["detail"].as_str().unwrap_or("").to_string();
    if line["check"] == "user" {
        let user = line["user"].as_str().unwrap_or("?");
        let f = Finding::new(
            "directory.user",
            if ok { Severity::Ok } else { Severity::Warning },
            format!("directory: {user}"),
            detail,
        );
        return if ok {
            f
        } else {
            f.fix("check the entry's attributes (directory.attributes, in order) and directory.default_country for national formats")
        };
    }
    let url = line["url"].as_str().unwrap_or("?");
    let f = Finding::new(
        "directory.connection",
        if ok { Severity::Ok } else { Severity::Error },
        url.to_string(),
        detail,
    );
    if ok {
        f
    } else {
        f.fix("logins of users whose number is only in the directory are denied until this works: check url, ca_file, bind_dn and the password file")
    }
}
