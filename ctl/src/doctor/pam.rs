//! PAM stacks: parse /etc/pam.d files the way Linux-PAM does (comments,
//! `\` continuations, `[...]` controls, `@include`, `include`/`substack`),
//! flatten a service's `auth` stack and find every way a login can get
//! through it without pam_smsotp.so saying yes.

use super::{Finding, Host, Severity};
use std::path::Path;

/// Modules that check a password (the first factor).
const PASSWORD_MODULES: &[&str] = &[
    "pam_unix.so",
    "pam_sss.so",
    "pam_ldap.so",
    "pam_krb5.so",
    "pam_winbind.so",
    "pam_systemd_home.so",
    "pam_userdb.so",
    "pam_pwquality.so",
];

/// `sufficient` modules that cannot log anyone in from the outside.
const HARMLESS_SUFFICIENT: &[&str] = &["pam_rootok.so"];

const MAX_INCLUDE_DEPTH: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    Required,
    Requisite,
    Sufficient,
    Optional,
    Include(String),
    Substack(String),
    /// `[value=action ...]`
    Bracket(Vec<(String, String)>),
    Unknown(String),
}

/// One `auth` line of a flattened stack.
#[derive(Debug, Clone)]
pub struct Entry {
    /// `/etc/pam.d/common-auth:17`
    pub origin: String,
    pub control: Control,
    /// The module as written (a name or an absolute path).
    pub module: String,
    pub args: Vec<String>,
    /// `-auth`: the line is skipped silently when the module is missing.
    pub dash: bool,
}

impl Entry {
    pub fn module_name(&self) -> &str {
        self.module.rsplit('/').next().unwrap_or(&self.module)
    }

    pub fn is_smsotp(&self) -> bool {
        matches!(self.module_name(), "pam_smsotp.so" | "libpam_smsotp.so")
    }

    fn has_arg(&self, arg: &str) -> bool {
        self.args.iter().any(|a| a == arg)
    }

    /// The action for a PAM return `value` under a bracket control.
    fn action(&self, value: &str) -> Option<String> {
        match &self.control {
            Control::Bracket(pairs) => pairs
                .iter()
                .find(|(v, _)| v == value)
                .or_else(|| pairs.iter().find(|(v, _)| v == "default"))
                .map(|(_, a)| a.clone())
                .or_else(|| Some("bad".into())),
            _ => None,
        }
    }

    fn control_text(&self) -> String {
        match &self.control {
            Control::Required => "required".into(),
            Control::Requisite => "requisite".into(),
            Control::Sufficient => "sufficient".into(),
            Control::Optional => "optional".into(),
            Control::Include(f) => format!("include {f}"),
            Control::Substack(f) => format!("substack {f}"),
            Control::Bracket(p) => format!(
                "[{}]",
                p.iter()
                    .map(|(v, a)| format!("{v}={a}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            Control::Unknown(s) => s.clone(),
        }
    }
}

/// A logical line: type, control, module, args (comments removed,
/// continuations joined).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawLine {
    pub lineno: usize,
    pub kind: String,
    pub control: Control,
    pub module: String,
    pub args: Vec<String>,
}

/// Parses a pam.d file. `@include X` becomes a line of kind `@include`.
pub fn parse(text: &str) -> Vec<RawLine> {
    let mut out = Vec::new();
    let mut pending = String::new();
    let mut start = 0;
    for (i, raw) in text.lines().enumerate() {
        if pending.is_empty() {
            start = i + 1;
        }
        let line = match raw.find('#') {
            Some(p) => &raw[..p],
            None => raw,
        };
        if let Some(stripped) = line.strip_suffix('\\') {
            pending.push_str(stripped);
            pending.push(' ');
            continue;
        }
        pending.push_str(line);
        let logical = std::mem::take(&mut pending);
        if let Some(l) = parse_logical(&logical, start) {
            out.push(l);
        }
    }
    if let Some(l) = parse_logical(&pending, start) {
        out.push(l);
    }
    out
}

fn parse_logical(line: &str, lineno: usize) -> Option<RawLine> {
    let mut words = line.split_whitespace();
    let kind = words.next()?.to_string();
    if kind == "@include" {
        let file = words.next().unwrap_or_default().to_string();
        return Some(RawLine {
            lineno,
            kind,
            control: Control::Include(file),
            module: String::new(),
            args: Vec::new(),
        });
    }
    let rest: Vec<&str> = words.collect();
    let joined = rest.join(" ");
    let (control_text, after) = if joined.starts_with('[') {
        let end = joined.find(']').unwrap_or(joined.len() - 1);
        (joined[..=end].to_string(), joined[end + 1..].to_string())
    } else {
        let mut it = joined.splitn(2, ' ');
        (
            it.next().unwrap_or_default().to_string(),
            it.next().unwrap_or_default().to_string(),
        )
    };
    let mut after = after.split_whitespace();
    let first = after.next().unwrap_or_default().to_string();
    let control = match control_text.as_str() {
        "required" => Control::Required,
        "requisite" => Control::Requisite,
        "sufficient" => Control::Sufficient,
        "optional" => Control::Optional,
        "include" => Control::Include(first.clone()),
        "substack" => Control::Substack(first.clone()),
        s if s.starts_with('[') => Control::Bracket(
            s.trim_start_matches('[')
                .trim_end_matches(']')
                .split_whitespace()
                .filter_map(|kv| {
                    let (k, v) = kv.split_once('=')?;
                    Some((k.to_ascii_lowercase(), v.to_ascii_lowercase()))
                })
                .collect(),
        ),
        s => Control::Unknown(s.to_string()),
    };
    let (module, args) = match control {
        Control::Include(_) | Control::Substack(_) => (String::new(), Vec::new()),
        _ => (first, after.map(str::to_string).collect()),
    };
    Some(RawLine {
        lineno,
        kind,
        control,
        module,
        args,
    })
}

/// The flattened `auth` stack of a service file, plus findings about
/// files that could not be read.
pub fn auth_stack(host: &Host, file: &str) -> (Vec<Entry>, Vec<Finding>) {
    let mut entries = Vec::new();
    let mut problems = Vec::new();
    flatten(host, file, 0, &mut entries, &mut problems);
    (entries, problems)
}

fn pam_file(name: &str) -> String {
    if name.starts_with('/') {
        name.to_string()
    } else {
        format!("/etc/pam.d/{name}")
    }
}

fn flatten(
    host: &Host,
    file: &str,
    depth: usize,
    out: &mut Vec<Entry>,
    problems: &mut Vec<Finding>,
) {
    let shown = pam_file(file);
    if depth > MAX_INCLUDE_DEPTH {
        problems.push(Finding::new(
            "pam.include-loop",
            Severity::Error,
            shown,
            "includes nest too deep (a loop?); libpam refuses such a stack",
        ));
        return;
    }
    let text = match std::fs::read_to_string(host.path(Path::new(&shown))) {
        Ok(t) => t,
        Err(e) => {
            problems.push(
                Finding::new(
                    "pam.include-missing",
                    Severity::Error,
                    shown.clone(),
                    format!("cannot read {shown}: {e}; every login through this stack fails"),
                )
                .fix(format!(
                    "restore {shown} or remove the line that includes it"
                )),
            );
            return;
        }
    };
    for line in parse(&text) {
        let is_auth = line.kind == "auth" || line.kind == "-auth";
        match (&line.control, line.kind.as_str()) {
            (Control::Include(inc), "@include") => flatten(host, inc, depth + 1, out, problems),
            (Control::Include(inc) | Control::Substack(inc), _) if is_auth => {
                flatten(host, inc, depth + 1, out, problems)
            }
            _ if is_auth => out.push(Entry {
                origin: format!("{shown}:{}", line.lineno),
                control: line.control.clone(),
                module: line.module.clone(),
                args: line.args.clone(),
                dash: line.kind.starts_with('-'),
            }),
            _ => {}
        }
    }
}

/// Other /etc/pam.d files (not `common-*`, not `other`) that name the
/// module directly.
pub fn services_naming_module(host: &Host) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(host.path(Path::new("/etc/pam.d"))) else {
        return Vec::new();
    };
    let mut out: Vec<String> = dir
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("common-") || name == "other" || name.contains('.') {
                return None;
            }
            let text = std::fs::read_to_string(e.path()).ok()?;
            parse(&text)
                .iter()
                .any(|l| l.module.ends_with("pam_smsotp.so"))
                .then_some(name)
        })
        .collect();
    out.sort();
    out
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

/// Every check on one service.
pub fn check_service(host: &Host, service: &str) -> Vec<Finding> {
    let mut findings = Vec::new();
    let file = format!("/etc/pam.d/{service}");
    let stack_file = if host.path(Path::new(&file)).is_file() {
        service.to_string()
    } else {
        let other = host.path(Path::new("/etc/pam.d/other"));
        let (stack, _) = if other.is_file() {
            auth_stack(host, "other")
        } else {
            (Vec::new(), Vec::new())
        };
        let other_has = stack.iter().any(Entry::is_smsotp);
        findings.push(
            Finding::new(
                "pam.service-missing",
                Severity::Error,
                file.clone(),
                format!(
                    "{file} does not exist, so libpam runs /etc/pam.d/other for `{service}` \
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
            )),
        );
        return findings;
    };

    let (stack, problems) = auth_stack(host, &stack_file);
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
                let action = sms.action(value).unwrap_or_default();
                if !matches!(action.as_str(), "bad" | "die") {
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
                                sms.control_text()
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

    // Lines before the module: anything that can end the stack with
    // success, or jump over the module, is a way around the code.
    let mut password_step = false;
    for (i, e) in stack[..idx].iter().enumerate() {
        let name = e.module_name();
        if PASSWORD_MODULES.contains(&name) {
            password_step = true;
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
        let ends_with_success = match &e.control {
            Control::Sufficient => true,
            Control::Bracket(pairs) => pairs.iter().any(|(_, a)| a == "done"),
            _ => false,
        };
        if ends_with_success {
            let harmless = HARMLESS_SUFFICIENT.contains(&name);
            push(
                Finding::new(
                    "pam.sufficient-before",
                    if harmless {
                        Severity::Info
                    } else {
                        Severity::Error
                    },
                    e.origin.clone(),
                    if harmless {
                        format!("{} {name} before pam_smsotp.so: root skips the code (expected for su)", e.control_text())
                    } else {
                        format!(
                            "`{} {name}` comes before pam_smsotp.so ({}): when {name} succeeds the stack \
                             ends and the code is never asked",
                            e.control_text(),
                            sms.origin
                        )
                    },
                )
                .fix(format!(
                    "make the {name} line `required`/`requisite`, or move pam_smsotp.so above it"
                )),
                &mut findings,
            );
        }
        if let Control::Bracket(pairs) = &e.control {
            for (value, action) in pairs {
                if let Ok(n) = action.parse::<usize>() {
                    if i + n >= idx {
                        push(
                            Finding::new(
                                "pam.jump-over",
                                Severity::Error,
                                e.origin.clone(),
                                format!(
                                    "{value}={n} on the {name} line jumps over pam_smsotp.so ({}): \
                                     that path reaches the end of the stack without the code",
                                    sms.origin
                                ),
                            )
                            .fix(
                                "shorten the jump, or move pam_smsotp.so before this line's target",
                            ),
                            &mut findings,
                        );
                    }
                }
            }
        }
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
    if !bad && !include_broken {
        findings.push(Finding::new(
            "pam.ok",
            Severity::Ok,
            file,
            format!(
                "`{service}` asks for the code ({} {})",
                sms.control_text(),
                sms.origin
            ),
        ));
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_controls_comments_and_continuations() {
        let text = "#%PAM-1.0\n@include common-auth\nauth [success=1 default=ignore]  pam_unix.so nullok # c\n\
                    auth required \\\n   pam_smsotp.so socket=/x\n-auth optional pam_x.so\n";
        let lines = parse(text);
        assert_eq!(lines.len(), 4, "{lines:#?}");
        assert_eq!(lines[0].control, Control::Include("common-auth".into()));
        assert_eq!(
            lines[1].control,
            Control::Bracket(vec![
                ("success".into(), "1".into()),
                ("default".into(), "ignore".into())
            ])
        );
        assert_eq!(lines[1].args, vec!["nullok"]);
        assert_eq!(lines[2].module, "pam_smsotp.so");
        assert_eq!(lines[2].args, vec!["socket=/x"]);
        assert_eq!(lines[2].lineno, 4);
        assert_eq!(lines[3].kind, "-auth");
    }

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
        let f = check_service(&h, "sshd");
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
            ("auth [success=2 default=ignore] pam_unix.so\nauth requisite pam_deny.so\nauth required pam_smsotp.so\n", "pam.jump-over"),
            ("@include common-auth\nauth [success=ok default=ignore] pam_smsotp.so\n", "pam.control"),
            ("@include common-auth\nauth required /nowhere/pam_smsotp.so\n", "pam.module-file-missing"),
            ("@include nothere\nauth required pam_smsotp.so\n", "pam.include-missing"),
        ];
        for (stack, check) in cases {
            let (_d, h) = fixture(&[("common-auth", COMMON), ("svc", stack)]);
            let f = check_service(&h, "svc");
            assert!(
                checks(&f, Severity::Error).contains(check),
                "{stack}: {f:#?}"
            );
            assert!(
                !checks(&f, Severity::Ok).contains(&"pam.ok"),
                "{stack}: {f:#?}"
            );
        }
        let (_d, h) = fixture(&[("common-auth", COMMON)]);
        assert_eq!(
            checks(&check_service(&h, "svc"), Severity::Error),
            vec!["pam.service-missing"]
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
        let f = check_service(&h, "a");
        let w = checks(&f, Severity::Warning);
        for c in ["pam.nullok", "pam.failmode-safe", "pam.dash"] {
            assert!(w.contains(&c), "{c}: {f:#?}");
        }
        assert!(checks(&f, Severity::Error).is_empty(), "{f:#?}");
        let f = check_service(&h, "b");
        assert_eq!(checks(&f, Severity::Warning), vec!["pam.no-password-step"]);
        let f = check_service(&h, "su");
        assert!(checks(&f, Severity::Error).is_empty(), "{f:#?}");
        assert_eq!(checks(&f, Severity::Info), vec!["pam.sufficient-before"]);
    }
}
