//! PAM stacks: load a service's `auth` stack the way Linux-PAM does
//! ([`stack`]), walk every path libpam can take through it ([`eval`]), and
//! report every way a login gets through without pam_smsotp.so saying yes,
//! or reaches it without a proven password ([`verdict`]); and compare the
//! module line with the daemon's config ([`link`]).

mod eval;
mod link;
mod parse;
mod programs;
mod stack;
mod verdict;

pub use link::DaemonSide;

use super::{Finding, Host, Severity};
use parse::Control;
use programs::Program;
use stack::{auth_stack, Entry};
use std::path::Path;

/// The files of /etc/pam.d, sorted (names with a dot are backups such as
/// `sshd.dpkg-old`; libpam never reads them for a service).
fn pam_d_files(host: &Host) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(host.path(Path::new("/etc/pam.d"))) else {
        return Vec::new();
    };
    let mut out: Vec<String> = dir
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| !name.contains('.'))
        .collect();
    out.sort();
    out
}

/// Files that other stacks include rather than services of their own:
/// Debian's `common-*`, RHEL's `system-auth`, `password-auth`, `postlogin`
/// and friends, and the fallback `other`.
fn is_building_block(name: &str) -> bool {
    name.starts_with("common-")
        || name.ends_with("-auth")
        || matches!(name, "other" | "postlogin" | "config-util")
}

fn loads_module(host: &Host, service: &str) -> bool {
    auth_stack(host, service).0.iter().any(Entry::is_smsotp)
}

/// Services whose auth stack loads the module, directly or through an
/// include (with `pam-auth-update --enable smsotp`, every service that
/// includes common-auth).
pub fn services_loading_module(host: &Host) -> Vec<String> {
    pam_d_files(host)
        .into_iter()
        .filter(|name| !is_building_block(name) && loads_module(host, name))
        .collect()
}

/// Variants of `service` (`sudo-i` for `sudo`, `su-l` for `su`; the family
/// rule the daemon's policy uses) whose stack does not load the module:
/// Debian's `sudo-i` includes common-auth, not `sudo`, so a line added to
/// /etc/pam.d/sudo alone leaves `sudo -i` on the password.
fn unprotected_family(host: &Host, service: &str) -> Vec<Finding> {
    pam_d_files(host)
        .into_iter()
        .filter(|name| name != service && smsotp_config::service_family(name) == service)
        .filter(|name| !loads_module(host, name))
        .map(|name| {
            let file = format!("/etc/pam.d/{name}");
            Finding::new(
                "pam.family-unprotected",
                Severity::Error,
                file.clone(),
                format!(
                    "`{service}` asks for the code but its variant `{name}` does not load pam_smsotp.so: \
                     logins through `{name}` need the password only"
                ),
            )
            .fix(format!(
                "add the same pam_smsotp.so line to {file} (after its password step), or remove {file} \
                 if nothing uses it"
            ))
        })
        .collect()
}

/// Where a module named in a stack would be loaded from.
pub fn module_file(host: &Host, module: &str) -> Option<std::path::PathBuf> {
    if module.starts_with('/') {
        let p = host.path(Path::new(module));
        return p.is_file().then_some(p);
    }
    super::files::security_dirs()
        .into_iter()
        .map(|d| host.path(Path::new(&d)).join(module))
        .find(|p| p.is_file())
}

/// `/etc/pam.d/SERVICE` does not exist: libpam runs `other` for a program
/// that asks for SERVICE. A hole when that program is installed (or doctor
/// cannot tell which it is); when it is not, nothing logs in that way.
fn missing_service(host: &Host, service: &str, file: &str) -> Vec<Finding> {
    let program = match programs::program(host, service) {
        Program::Absent(paths) => {
            return vec![Finding::new(
                "pam.program-absent",
                Severity::Info,
                file,
                format!(
                    "{file} does not exist, nor does `{service}`'s program ({}): nothing \
                     logs in through `{service}` here",
                    paths.join(", ")
                ),
            )];
        }
        Program::Installed(path) => format!("{path} is installed and "),
        Program::Unknown => String::new(),
    };
    let other = host.path(Path::new("/etc/pam.d/other"));
    let (stack, _) = if other.is_file() {
        auth_stack(host, "other")
    } else {
        (Vec::new(), Vec::new())
    };
    let other_has = stack.iter().any(Entry::is_smsotp);
    vec![Finding::new(
        "pam.service-missing",
        Severity::Error,
        file,
        format!(
            "{program}{file} does not exist, so libpam runs /etc/pam.d/other for `{service}` \
             ({}); a service stack that silently falls back is not protected on purpose",
            if other_has {
                "which does ask for the code"
            } else {
                "which does NOT ask for the code"
            }
        ),
    )
    .fix(format!(
        "create {file} with the password step and `auth required pam_smsotp.so` \
         (see /usr/share/doc/smsotp/examples/), or drop `{service}` from the services to check"
    ))]
}

/// Every check on one service; `daemon` is what doctor could read of the
/// daemon's config (nothing to compare with when it could not).
pub fn check_service(host: &Host, service: &str, daemon: Option<&DaemonSide<'_>>) -> Vec<Finding> {
    let mut findings = Vec::new();
    let file = format!("/etc/pam.d/{service}");
    if !host.path(Path::new(&file)).is_file() {
        return missing_service(host, service, &file);
    }
    let (stack, problems) = auth_stack(host, service);
    let include_broken = !problems.is_empty();
    findings.extend(problems);
    let Some(idx) = stack.iter().position(Entry::is_smsotp) else {
        findings.push(
            Finding::new(
                "pam.module-absent",
                Severity::Error,
                file.clone(),
                format!("pam_smsotp.so is not in the auth stack of `{service}`: its logins need no SMS code"),
            )
            .fix(format!(
                "add `auth required pam_smsotp.so` right after `@include common-auth` in {file} \
                 (or `pam-auth-update --enable smsotp` for every service using common-auth)"
            )),
        );
        return findings;
    };
    let sms = &stack[idx];
    let mut bad = false;
    let mut push = |f: Finding, findings: &mut Vec<Finding>| {
        if f.severity == Severity::Error {
            bad = true;
        }
        findings.push(f);
    };

    // The module line itself.
    match &sms.control {
        Control::Sufficient => push(
            Finding::new(
                "pam.sufficient",
                Severity::Error,
                sms.origin.clone(),
                "pam_smsotp.so is `sufficient`: a right code ends the stack with success on its own \
                 (and its failure is ignored when another line succeeds)",
            )
            .fix("use `auth required pam_smsotp.so`"),
            &mut findings,
        ),
        Control::Optional => push(
            Finding::new(
                "pam.optional",
                Severity::Error,
                sms.origin.clone(),
                "pam_smsotp.so is `optional`: a wrong or missing code is ignored, the second factor is decoration",
            )
            .fix("use `auth required pam_smsotp.so`"),
            &mut findings,
        ),
        Control::Bracket(_) => {
            for value in ["auth_err", "maxtries", "authinfo_unavail", "conv_err"] {
                let action = sms.control.bracket_action(value).unwrap_or_default();
                if !matches!(action, "bad" | "die") {
                    let sev = if value == "authinfo_unavail" || value == "conv_err" {
                        Severity::Warning
                    } else {
                        Severity::Error
                    };
                    push(
                        Finding::new(
                            "pam.control",
                            sev,
                            sms.origin.clone(),
                            format!(
                                "pam_smsotp.so's control {} maps {value} to `{action}`: \
                                 that failure does not deny the login",
                                sms.control.text()
                            ),
                        )
                        .fix("use `auth required pam_smsotp.so` (or map every failure to `bad`/`die`)"),
                        &mut findings,
                    );
                }
            }
        }
        Control::Unknown(c) => push(
            Finding::new(
                "pam.control",
                Severity::Error,
                sms.origin.clone(),
                format!("unknown control `{c}` on the pam_smsotp.so line; libpam treats the line as broken"),
            )
            .fix("use `auth required pam_smsotp.so`"),
            &mut findings,
        ),
        _ => {}
    }
    if sms.has_arg("failmode=safe") {
        findings.push(
            Finding::new(
                "pam.failmode-safe",
                Severity::Warning,
                sms.origin.clone(),
                "failmode=safe: when smsotpd is down the login goes through on the password alone (fail-open)",
            )
            .fix("remove failmode=safe (the default, failmode=secure, denies) once the rollout is done"),
        );
    }
    if sms.dash {
        findings.push(
            Finding::new(
                "pam.dash",
                Severity::Warning,
                sms.origin.clone(),
                "`-auth`: when pam_smsotp.so is missing (package removed) libpam skips the line silently",
            )
            .fix("write `auth`, not `-auth`"),
        );
    }
    match module_file(host, &sms.module) {
        Some(_) => {}
        None => push(
            Finding::new(
                "pam.module-file-missing",
                Severity::Error,
                sms.origin.clone(),
                format!(
                    "{} names {}, which is not installed: {}",
                    sms.origin,
                    sms.module,
                    if sms.dash {
                        "the line is skipped and the login needs no code"
                    } else {
                        "every login through this stack fails"
                    }
                ),
            )
            .fix("install the smsotp package (pam_smsotp.so goes to /lib/<multiarch>/security/)"),
            &mut findings,
        ),
    }

    // Every path libpam can take: a login that gets through without the
    // module, or reaches it without a proven password.
    for f in verdict::findings(&stack, &eval::walk(&stack), idx) {
        push(f, &mut findings);
    }
    let mut password_step = false;
    for e in stack[..idx].iter().filter(|e| eval::is_password(e)) {
        password_step = true;
        let name = e.module_name();
        if e.has_arg("nullok") || e.has_arg("nullok_secure") {
            findings.push(
                Finding::new(
                    "pam.nullok",
                    Severity::Warning,
                    e.origin.clone(),
                    format!(
                        "{name} nullok: an account with an EMPTY password passes the password step, \
                         leaving the SMS code as its only factor"
                    ),
                )
                .fix(format!(
                    "remove nullok from the {name} line, or make sure no account has an empty \
                     password (`passwd -S -a | grep ' NP '`; lock them with `passwd -l`)"
                )),
            );
        }
    }
    if let Some(daemon) = daemon {
        for e in stack.iter().filter(|e| e.is_smsotp()) {
            if let Some(f) = link::socket_mismatch(e, &daemon.sockets) {
                push(f, &mut findings);
            }
        }
        findings.push(link::policy_section(service, daemon.policy, &file));
    }
    if !password_step {
        findings.push(
            Finding::new(
                "pam.no-password-step",
                Severity::Warning,
                sms.origin.clone(),
                format!(
                    "nothing before pam_smsotp.so in `{service}` checks a password: the SMS code is \
                     the whole PAM authentication"
                ),
            )
            .fix(
                "put `@include common-auth` (or your password module) before it; leave it out only for \
                 sshd with `AuthenticationMethods publickey,keyboard-interactive` (key + code)",
            ),
        );
    }
    findings.extend(unprotected_family(host, service));
    if !bad && !include_broken {
        findings.push(Finding::new(
            "pam.ok",
            Severity::Ok,
            file,
            format!(
                "`{service}` asks for the code ({} {})",
                sms.control.text(),
                sms.origin
            ),
        ));
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn fixture(files: &[(&str, &str)]) -> (tempfile::TempDir, Host) {
        let dir = tempfile::tempdir().unwrap();
        let pamd = dir.path().join("etc/pam.d");
        let sec = dir
            .path()
            .join(super::super::files::security_dirs()[0].trim_start_matches('/'));
        std::fs::create_dir_all(&pamd).unwrap();
        std::fs::create_dir_all(&sec).unwrap();
        std::fs::write(sec.join("pam_smsotp.so"), b"").unwrap();
        for (name, text) in files {
            std::fs::write(pamd.join(name), text).unwrap();
        }
        let host = Host::new(Some(dir.path()));
        (dir, host)
    }

    fn checks(f: &[Finding], sev: Severity) -> Vec<&'static str> {
        f.iter()
            .filter(|x| x.severity == sev)
            .map(|x| x.check)
            .collect()
    }

    const COMMON: &str = "auth [success=1 default=ignore] pam_unix.so\nauth requisite pam_deny.so\nauth required pam_permit.so\n";

    #[test]
    fn debian_layout_is_healthy() {
        let (_d, h) = fixture(&[
            ("common-auth", COMMON),
            (
                "sshd",
                "@include common-auth\nauth required pam_smsotp.so\n",
            ),
        ]);
        let f = check_service(&h, "sshd", None);
        assert!(checks(&f, Severity::Error).is_empty(), "{f:#?}");
        assert_eq!(checks(&f, Severity::Ok), vec!["pam.ok"]);
    }

    #[test]
    fn broken_layouts_are_reported() {
        let cases: &[(&str, &str)] = &[
            ("@include common-auth\nauth sufficient pam_smsotp.so\n", "pam.sufficient"),
            ("@include common-auth\nauth optional pam_smsotp.so\n", "pam.optional"),
            ("@include common-auth\n", "pam.module-absent"),
            ("auth sufficient pam_unix.so\nauth required pam_smsotp.so\n", "pam.sufficient-before"),
            ("auth [success=1 default=ignore] pam_unix.so\nauth required pam_smsotp.so\nauth required pam_permit.so\n", "pam.jump-over"),
            ("auth required pam_unix.so\nauth required pam_smsotp.so\n", "pam.code-after-failed-password"),
            ("@include common-auth\nauth [success=ok default=ignore] pam_smsotp.so\n", "pam.control"),
            ("@include common-auth\nauth required /nowhere/pam_smsotp.so\n", "pam.module-file-missing"),
            ("@include nothere\nauth required pam_smsotp.so\n", "pam.include-missing"),
        ];
        for (stack, check) in cases {
            let (_d, h) = fixture(&[("common-auth", COMMON), ("svc", stack)]);
            let f = check_service(&h, "svc", None);
            assert!(
                checks(&f, Severity::Error).contains(check),
                "{stack}: {f:#?}"
            );
            assert!(
                !checks(&f, Severity::Ok).contains(&"pam.ok"),
                "{stack}: {f:#?}"
            );
        }
        // A service doctor knows no program for (named with --service):
        // assume something uses it.
        let (_d, h) = fixture(&[("common-auth", COMMON)]);
        assert_eq!(
            checks(&check_service(&h, "svc", None), Severity::Error),
            vec!["pam.service-missing"]
        );
    }

    #[test]
    fn a_missing_stack_matters_only_when_its_program_is_installed() {
        let (d, h) = fixture(&[
            ("common-auth", COMMON),
            ("other", "auth required pam_deny.so\n"),
        ]);
        for service in ["sshd", "sudo", "sudo-i"] {
            let f = check_service(&h, service, None);
            assert_eq!(checks(&f, Severity::Error), Vec::<&str>::new(), "{f:#?}");
            assert_eq!(checks(&f, Severity::Info), vec!["pam.program-absent"]);
        }
        let sudo = d.path().join("usr/bin/sudo");
        std::fs::create_dir_all(sudo.parent().unwrap()).unwrap();
        std::fs::write(&sudo, b"").unwrap();
        std::fs::set_permissions(&sudo, std::fs::Permissions::from_mode(0o4755)).unwrap();
        for service in ["sudo", "sudo-i"] {
            let f = check_service(&h, service, None);
            assert_eq!(checks(&f, Severity::Error), vec!["pam.service-missing"]);
            assert!(
                f[0].message.starts_with("/usr/bin/sudo is installed"),
                "{f:#?}"
            );
        }
        assert_eq!(
            checks(&check_service(&h, "sshd", None), Severity::Info),
            vec!["pam.program-absent"]
        );
    }

    #[test]
    fn warnings() {
        let (_d, h) = fixture(&[
            ("common-auth", "auth [success=1 default=ignore] pam_unix.so nullok\nauth requisite pam_deny.so\nauth required pam_permit.so\n"),
            ("a", "@include common-auth\n-auth required pam_smsotp.so failmode=safe\n"),
            ("b", "auth required pam_smsotp.so\n"),
            ("su", "auth sufficient pam_rootok.so\n@include common-auth\nauth required pam_smsotp.so\n"),
        ]);
        let f = check_service(&h, "a", None);
        let w = checks(&f, Severity::Warning);
        for c in ["pam.nullok", "pam.failmode-safe", "pam.dash"] {
            assert!(w.contains(&c), "{c}: {f:#?}");
        }
        assert!(checks(&f, Severity::Error).is_empty(), "{f:#?}");
        let f = check_service(&h, "b", None);
        assert_eq!(checks(&f, Severity::Warning), vec!["pam.no-password-step"]);
        let f = check_service(&h, "su", None);
        assert!(checks(&f, Severity::Error).is_empty(), "{f:#?}");
        assert_eq!(checks(&f, Severity::Info), vec!["pam.sufficient-before"]);
    }
}
