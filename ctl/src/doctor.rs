//! `smsotpctl doctor`: checks everything a login with an SMS code depends
//! on and prints each problem with its fix.
//!
//! Every check produces [`Finding`]s; the report is healthy when none is an
//! error (warnings are printed but do not change the exit code). All file
//! reads go through [`Host`], so `--root DIR` checks an image or a test
//! fixture instead of `/`. `sshd -T` runs the real sshd binary (`-f` for
//! another config file, `-C` for Match blocks); everything it waits for is
//! bounded.

use clap::Args;
use serde::Serialize;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

mod directory;
mod files;
mod pam;
mod sshd;
mod store;

/// Services checked when no `--service` is given (plus every other
/// /etc/pam.d service whose stack loads the module).
pub const DEFAULT_SERVICES: &[&str] = &["sshd", "sudo"];

#[derive(Args, Debug, Clone)]
pub struct DoctorArgs {
    /// Read every file under DIR instead of / (images, test fixtures).
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// A PAM service to check (repeatable; default: sshd, sudo and every
    /// /etc/pam.d service whose auth stack loads pam_smsotp.so).
    #[arg(long = "service", value_name = "NAME")]
    pub services: Vec<String>,
    /// The sshd binary run as `sshd -T` (its checks are skipped when missing).
    #[arg(long, value_name = "PATH", default_value = "/usr/sbin/sshd")]
    pub sshd: PathBuf,
    /// sshd config file for `sshd -T -f FILE` (default: sshd's own, or
    /// ROOT/etc/ssh/sshd_config with --root).
    #[arg(long, value_name = "FILE")]
    pub sshd_config: Option<PathBuf>,
    /// Connection spec for `sshd -T -C SPEC` to evaluate Match blocks,
    /// e.g. user=alice,host=gw,addr=192.0.2.1.
    #[arg(long, value_name = "SPEC")]
    pub sshd_match: Option<String>,
    /// Do not check sshd at all.
    #[arg(long)]
    pub no_sshd: bool,
    /// Do not check the daemon's socket or try to reach it.
    #[arg(long)]
    pub no_daemon: bool,
    /// Also look up this user's number in the [directory] (repeatable).
    /// The directory connection is checked whenever the config has one.
    #[arg(long = "directory-user", value_name = "NAME")]
    pub directory_users: Vec<String>,
    /// The smsotpd binary that checks the directory
    /// (`smsotpd --check-directory`).
    #[arg(long, value_name = "PATH", default_value = "/usr/sbin/smsotpd")]
    pub smsotpd: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Ok,
    Info,
    Warning,
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Severity::Ok => "ok",
            Severity::Info => "info",
            Severity::Warning => "WARNING",
            Severity::Error => "ERROR",
        })
    }
}

/// One result: what was checked, how it went, and what to do about it.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// Stable identifier of the check, e.g. `pam.sufficient`.
    pub check: &'static str,
    pub severity: Severity,
    /// What it is about: a file (`/etc/pam.d/sshd:12`), `sshd`, `daemon`.
    pub subject: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Finding {
    pub fn new(
        check: &'static str,
        severity: Severity,
        subject: impl Into<String>,
        message: impl Into<String>,
    ) -> Finding {
        Finding {
            check,
            severity,
            subject: subject.into(),
            message: message.into(),
            fix: None,
        }
    }

    pub fn fix(mut self, fix: impl Into<String>) -> Finding {
        self.fix = Some(fix.into());
        self
    }
}

/// The machine being checked: `/` or a `--root` directory.
#[derive(Debug, Clone)]
pub struct Host {
    root: PathBuf,
}

impl Host {
    pub fn new(root: Option<&Path>) -> Host {
        Host {
            root: root.map(Path::to_path_buf).unwrap_or_else(|| "/".into()),
        }
    }

    pub fn is_real_root(&self) -> bool {
        self.root == Path::new("/")
    }

    /// Where the host's absolute `path` is on this machine.
    pub fn path(&self, path: &Path) -> PathBuf {
        match path.strip_prefix("/") {
            Ok(rel) => self.root.join(rel),
            Err(_) => self.root.join(path),
        }
    }
}

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub healthy: bool,
    pub errors: usize,
    pub warnings: usize,
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn from_findings(findings: Vec<Finding>) -> Report {
        let errors = findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count();
        let warnings = findings
            .iter()
            .filter(|f| f.severity == Severity::Warning)
            .count();
        Report {
            healthy: errors == 0,
            errors,
            warnings,
            findings,
        }
    }

    pub fn render_text(&self) -> String {
        let mut out = String::new();
        for f in &self.findings {
            out += &format!("{:<8}{:<28}{}\n", f.severity, f.check, f.subject);
            out += &format!("        {}\n", f.message);
            if let Some(fix) = &f.fix {
                out += &format!("        fix: {fix}\n");
            }
        }
        out += &format!(
            "\nsmsotp doctor: {} ({} error{}, {} warning{})\n",
            if self.healthy { "healthy" } else { "PROBLEMS" },
            self.errors,
            if self.errors == 1 { "" } else { "s" },
            self.warnings,
            if self.warnings == 1 { "" } else { "s" },
        );
        out
    }
}

/// Runs every check.
pub fn diagnose(args: &DoctorArgs, config: &Path, socket: Option<&Path>) -> Report {
    let host = Host::new(args.root.as_deref());
    let mut findings = Vec::new();

    findings.extend(files::module_installed(&host));
    let cfg = files::config(&host, config, &mut findings);
    if let Some(c) = &cfg {
        findings.extend(store::file(&host, c));
    }

    let mut services: Vec<String> = args.services.clone();
    if services.is_empty() {
        services = DEFAULT_SERVICES.iter().map(|s| s.to_string()).collect();
        for extra in pam::services_loading_module(&host) {
            if !services.contains(&extra) {
                services.push(extra);
            }
        }
    }
    let daemon = cfg.as_ref().map(pam::DaemonSide::new);
    for service in &services {
        findings.extend(pam::check_service(&host, service, daemon.as_ref()));
    }

    if !args.no_sshd && (args.services.is_empty() || services.iter().any(|s| s == "sshd")) {
        findings.extend(sshd::check(&host, args));
    }

    if cfg.as_ref().is_some_and(|c| c.directory.is_some()) {
        findings.extend(directory::check(&host, args, &host.path(config)));
    } else if !args.directory_users.is_empty() {
        findings.push(Finding::new(
            "directory.none",
            Severity::Error,
            config.display().to_string(),
            "--directory-user was given but the config has no [directory] section",
        ));
    }

    if !args.no_daemon {
        let socket_path = match socket {
            Some(s) => s.to_path_buf(),
            None => host.path(
                &cfg.as_ref()
                    .map(|c| c.socket.clone())
                    .unwrap_or_else(|| smsotp_config::DEFAULT_SOCKET.into()),
            ),
        };
        findings.extend(files::daemon(&socket_path));
        findings.extend(store::through_daemon(&socket_path));
    }

    // A shared file (common-auth, system-auth) is reached from every
    // service that includes it: say each thing about it once.
    let mut seen = std::collections::HashSet::new();
    findings.retain(|f| seen.insert((f.check, f.subject.clone(), f.message.clone())));
    // Errors first, then warnings, then the rest, stable within each.
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    Report::from_findings(findings)
}

pub fn run(args: &DoctorArgs, config: &Path, socket: Option<&Path>, json: bool) -> ExitCode {
    if let Some(root) = &args.root {
        if !root.is_dir() {
            eprintln!(
                "smsotpctl doctor: --root {} is not a directory",
                root.display()
            );
            return ExitCode::from(2);
        }
    }
    let report = diagnose(args, config, socket);
    if json {
        match serde_json::to_string_pretty(&report) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("smsotpctl doctor: {e}");
                return ExitCode::from(2);
            }
        }
    } else {
        print!("{}", report.render_text());
    }
    if report.healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_paths_are_rooted() {
        let h = Host::new(Some(Path::new("/tmp/fx")));
        assert_eq!(
            h.path(Path::new("/etc/pam.d/sshd")),
            PathBuf::from("/tmp/fx/etc/pam.d/sshd")
        );
        assert!(!h.is_real_root());
        assert_eq!(
            Host::new(None).path(Path::new("/etc")),
            PathBuf::from("/etc")
        );
    }

    #[test]
    fn a_shared_file_is_reported_once() {
        let dir = tempfile::tempdir().unwrap();
        let pamd = dir.path().join("etc/pam.d");
        std::fs::create_dir_all(&pamd).unwrap();
        let common =
            "auth [success=1 default=ignore] pam_unix.so nullok\nauth requisite pam_deny.so\n\
                      auth required pam_permit.so\nauth required pam_smsotp.so\n";
        std::fs::write(pamd.join("common-auth"), common).unwrap();
        for service in ["sshd", "sudo", "login"] {
            std::fs::write(pamd.join(service), "@include common-auth\n").unwrap();
        }
        let sec = dir
            .path()
            .join(files::security_dirs()[0].trim_start_matches('/'));
        std::fs::create_dir_all(&sec).unwrap();
        std::fs::write(sec.join("pam_smsotp.so"), b"").unwrap();
        let args = DoctorArgs {
            root: Some(dir.path().to_path_buf()),
            services: Vec::new(),
            sshd: PathBuf::from("/nonexistent"),
            sshd_config: None,
            sshd_match: None,
            no_sshd: true,
            no_daemon: true,
            directory_users: Vec::new(),
            smsotpd: PathBuf::from("/nonexistent"),
        };
        let r = diagnose(&args, Path::new("/etc/smsotp/smsotpd.toml"), None);
        let nullok = r
            .findings
            .iter()
            .filter(|f| f.check == "pam.nullok")
            .count();
        assert_eq!(nullok, 1, "{:#?}", r.findings);
        let ok = r.findings.iter().filter(|f| f.check == "pam.ok").count();
        assert_eq!(ok, 3, "one per service: {:#?}", r.findings);
    }

    #[test]
    fn report_counts_and_health() {
        let r = Report::from_findings(vec![
            Finding::new("a", Severity::Warning, "x", "m"),
            Finding::new("b", Severity::Ok, "x", "m"),
        ]);
        assert!(r.healthy);
        assert_eq!((r.errors, r.warnings), (0, 1));
        let r = Report::from_findings(vec![Finding::new("a", Severity::Error, "x", "m").fix("do")]);
        assert!(!r.healthy);
        assert!(r.render_text().contains("fix: do"));
    }
}
