//! The paths through a stack that defeat the second factor, as findings:
//! the code asked although no password was proven (an SMS for anyone who
//! knows a user name, and codes to guess or lock), a login that succeeds
//! without the module ever running, and a skip of the module (PAM_IGNORE:
//! exempt user, disabled service) that denies instead of passing.

use super::eval::{is_password, Action, Impression, Path, Ret, Step, Walk};
use super::stack::Entry;
use crate::doctor::{Finding, Severity};

/// `sufficient` modules that cannot log anyone in from the outside.
const HARMLESS_SUFFICIENT: &[&str] = &["pam_rootok.so"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The module runs on `path` while no password was proven: none
    /// succeeded, or the stack had already failed (a substack's pam_deny).
    CodeWithoutPassword {
        path: usize,
        /// The step running the module.
        at: usize,
        /// The entry of a password module that failed on the way, if any.
        failed: Option<usize>,
        /// On some such path a right code alone logs in.
        code_alone: bool,
    },
    /// A login succeeds on `path` without the module; `culprit` is the
    /// step that went past it.
    NotReached {
        path: usize,
        culprit: usize,
        after_password: bool,
    },
    /// The module answered PAM_IGNORE after a proven password and the
    /// login failed, while a right code on the same stack logs in.
    SkipDenies { path: usize, at: usize },
    /// A right password and a right code never log in (a `required`
    /// module line before `pam_deny.so`): `path` is one such login.
    NeverSucceeds { path: usize },
}

/// A step where a password module said yes.
fn password_ok(entries: &[Entry], s: &Step) -> bool {
    s.ret == Ret::Success && is_password(&entries[s.entry])
}

/// Whether a password was proven when step `at` ran: one was accepted on
/// the way, and nothing has failed the stack since.
fn proven(entries: &[Entry], p: &Path, at: usize) -> bool {
    p.steps[at].before != Impression::Negative
        && p.steps[..at].iter().any(|s| password_ok(entries, s))
}

/// The problems of a walk of `entries` whose first pam_smsotp.so line is
/// `module`: at most one of each kind, but one [`Problem::NotReached`] per
/// line that goes past the module.
pub fn problems(entries: &[Entry], walk: &Walk, module: usize) -> Vec<Problem> {
    let password_before = entries[..module].iter().any(is_password);
    // (path, step, failed password entry) of the clearest unproven run.
    let mut without: Option<(usize, usize, Option<usize>)> = None;
    let mut code_alone = false;
    let mut skip_denies = None;
    let mut code_works = false;
    let mut code_fails = None;
    let mut not_reached = Vec::new();
    let mut culprits_seen = Vec::new();
    for (n, p) in walk.paths.iter().enumerate() {
        let Some(at) = p.steps.iter().position(|s| entries[s.entry].is_smsotp()) else {
            // Never ran: a problem when the login still succeeded.
            let culprit = p
                .steps
                .iter()
                .position(|s| s.entry < module && s.next > module);
            if let Some(culprit) = culprit.filter(|_| p.success) {
                let entry = p.steps[culprit].entry;
                if !culprits_seen.contains(&entry) {
                    culprits_seen.push(entry);
                    not_reached.push(Problem::NotReached {
                        path: n,
                        culprit,
                        after_password: p.steps[..=culprit].iter().any(|s| password_ok(entries, s)),
                    });
                }
            }
            continue;
        };
        let ret = p.steps[at].ret;
        if proven(entries, p, at) {
            code_works |= ret == Ret::Success && p.success;
            if !p.success && ret == Ret::Success {
                code_fails.get_or_insert(Problem::NeverSucceeds { path: n });
            }
            if !p.success && ret == Ret::Ignore {
                skip_denies.get_or_insert(Problem::SkipDenies { path: n, at });
            }
        } else if password_before {
            code_alone |= ret == Ret::Success && p.success;
            let failed = p.steps[..at]
                .iter()
                .find(|s| is_password(&entries[s.entry]) && !password_ok(entries, s))
                .map(|s| s.entry);
            // Prefer a path where a password visibly failed: it explains more.
            if without.is_none_or(|(_, _, f)| f.is_none() && failed.is_some()) {
                without = Some((n, at, failed));
            }
        }
    }
    let mut out: Vec<Problem> = without
        .map(|(path, at, failed)| Problem::CodeWithoutPassword {
            path,
            at,
            failed,
            code_alone,
        })
        .into_iter()
        .collect();
    out.extend(not_reached);
    out.extend(if code_works { skip_denies } else { code_fails });
    out
}

/// `a → b → c`: the lines a path ran up to step `upto`, with the
/// `include`/`substack` lines that led to each file.
fn chain(entries: &[Entry], p: &Path, upto: usize) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut via: &[String] = &[];
    for s in &p.steps[..=upto] {
        let e = &entries[s.entry];
        let common = via.iter().zip(&e.via).take_while(|(a, b)| a == b).count();
        parts.extend(e.via[common..].iter().cloned());
        via = &e.via;
        let action = match s.action {
            Action::Jump(n) => format!("jump {n}"),
            a => format!("{a:?}").to_lowercase(),
        };
        parts.push(format!("{}: {} ({action})", e.describe(), s.ret.name()));
    }
    parts.join(" → ")
}

/// Findings for the problems of one service's stack.
pub fn findings(entries: &[Entry], walk: &Walk, module: usize) -> Vec<Finding> {
    let sms = &entries[module];
    let mut out = Vec::new();
    if walk.truncated {
        out.push(Finding::new(
            "pam.stack-complex",
            Severity::Warning,
            sms.origin.clone(),
            "the auth stack has too many paths to follow them all; the checks below saw a part of them",
        ));
    }
    for problem in problems(entries, walk, module) {
        out.push(match problem {
            Problem::CodeWithoutPassword {
                path,
                at,
                failed,
                code_alone,
            } => {
                let p = &walk.paths[path];
                let why = match failed {
                    Some(f) => format!("after a failed password ({} answered auth_err)", entries[f].module_name()),
                    None => "without a proven password (the password step did not run or did not succeed)".into(),
                };
                let through_substack = p.steps[..at].iter().any(|s| entries[s.entry].level > 0);
                Finding::new(
                    "pam.code-after-failed-password",
                    Severity::Error,
                    entries[p.steps[at].entry].origin.clone(),
                    format!(
                        "the code is asked {why}: {}. Anyone who knows a user name gets an SMS sent, \
                         can guess codes and can lock the account's codes{}",
                        chain(entries, p, at),
                        if code_alone { "; and a right code alone logs in" } else { "" }
                    ),
                )
                .fix(if through_substack {
                    "a failed substack does not stop the service's stack: put pam_smsotp.so inside the \
                     substack's file right after the password module and make that module `requisite` \
                     (docs/OPERATIONS.md, RHEL/authselect)"
                } else {
                    "make the password line `requisite` (or `[success=ok default=die]`) so that a wrong \
                     password ends the stack before pam_smsotp.so"
                })
            }
            Problem::NotReached {
                path,
                culprit,
                after_password,
            } => {
                let p = &walk.paths[path];
                let step = &p.steps[culprit];
                let e = &entries[step.entry];
                let name = e.module_name();
                let check = match step.action {
                    Action::Jump(_) => "pam.jump-over",
                    _ => "pam.sufficient-before",
                };
                let harmless = !after_password && HARMLESS_SUFFICIENT.contains(&name);
                let inlined = e.via.iter().any(|v| v.contains(" include "));
                let message = if harmless {
                    format!("{} before pam_smsotp.so: root skips the code (expected for su)", e.describe())
                } else {
                    format!(
                        "{} the code is never reached: {} ends the stack with success before {}{}",
                        if after_password { "after a successful password" } else { "on this path" },
                        chain(entries, p, culprit),
                        sms.origin,
                        if inlined {
                            " (`include` inlines the file, so its `sufficient`/`done` ends the whole stack)"
                        } else {
                            ""
                        }
                    )
                };
                Finding::new(
                    check,
                    if harmless { Severity::Info } else { Severity::Error },
                    e.origin.clone(),
                    message,
                )
                .fix(format!(
                    "make the {name} line `requisite` (or `[success=ok default=die]`) and put pam_smsotp.so \
                     right after it, in the same file; or shorten the jump"
                ))
            }
            Problem::SkipDenies { path, at } => {
                let p = &walk.paths[path];
                Finding::new(
                    "pam.skip-denies",
                    Severity::Warning,
                    entries[p.steps[at].entry].origin.clone(),
                    format!(
                        "when pam_smsotp.so skips a login (PAM_IGNORE: exempt user, disabled service, \
                         grace) the login fails: {}",
                        chain(entries, p, p.steps.len() - 1)
                    ),
                )
                .fix("let `ignore` go past the lines that deny, e.g. `[success=1 ignore=1 default=die] pam_smsotp.so` before `pam_deny.so`")
            }
            Problem::NeverSucceeds { path } => {
                let p = &walk.paths[path];
                Finding::new(
                    "pam.code-never-succeeds",
                    Severity::Error,
                    sms.origin.clone(),
                    format!(
                        "a right password and a right code never log in: {}",
                        chain(entries, p, p.steps.len() - 1)
                    ),
                )
                .fix("let the module's success go past the lines that deny, e.g. `[success=1 ignore=1 default=die] pam_smsotp.so` right before `pam_deny.so`")
            }
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::eval::{tests::entries, walk};
    use super::*;

    fn kinds(lines: &[(usize, &str)]) -> Vec<&'static str> {
        let e = entries(lines);
        let module = e.iter().position(Entry::is_smsotp).unwrap();
        findings(&e, &walk(&e), module)
            .into_iter()
            .map(|f| f.check)
            .collect()
    }

    const SUBSTACK: &[(usize, &str)] = &[
        (0, "auth substack password-auth"),
        (1, "auth required pam_env.so"),
        (1, "auth sufficient pam_unix.so"),
        (1, "auth required pam_deny.so"),
        (0, "auth required pam_smsotp.so"),
    ];

    #[test]
    fn rhel_substack_asks_the_code_after_a_wrong_password() {
        assert_eq!(kinds(SUBSTACK), ["pam.code-after-failed-password"]);
        let e = entries(SUBSTACK);
        let f = findings(&e, &walk(&e), 4);
        assert!(
            f[0].message.contains("pam_unix.so answered auth_err"),
            "{}",
            f[0].message
        );
        assert!(
            f[0].message
                .contains("t:4 required pam_deny.so: auth_err (bad)"),
            "{}",
            f[0].message
        );
    }

    #[test]
    fn rhel_include_never_reaches_the_code() {
        let lines: Vec<(usize, &str)> = SUBSTACK[1..].iter().map(|(_, l)| (0, *l)).collect();
        assert_eq!(
            kinds(&lines),
            ["pam.code-after-failed-password", "pam.sufficient-before"]
        );
    }

    #[test]
    fn recommended_placements_are_clean() {
        let rhel = [
            (0, "auth substack password-auth"),
            (1, "auth required pam_env.so"),
            (1, "auth requisite pam_unix.so"),
            (1, "auth [success=1 ignore=1 default=die] pam_smsotp.so"),
            (1, "auth required pam_deny.so"),
        ];
        assert!(kinds(&rhel).is_empty(), "{:?}", kinds(&rhel));
        let debian = [
            (0, "auth [success=1 default=ignore] pam_unix.so"),
            (0, "auth requisite pam_deny.so"),
            (0, "auth required pam_permit.so"),
            (0, "auth required pam_smsotp.so"),
        ];
        assert!(kinds(&debian).is_empty(), "{:?}", kinds(&debian));
        let su = [
            (0, "auth sufficient pam_rootok.so"),
            (0, "auth requisite pam_unix.so"),
            (0, "auth required pam_smsotp.so"),
        ];
        let e = entries(&su);
        let f = findings(&e, &walk(&e), 2);
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(
            (f[0].check, f[0].severity),
            ("pam.sufficient-before", Severity::Info)
        );
    }

    #[test]
    fn required_password_and_ignored_failures_are_reported() {
        let required = [
            (0, "auth required pam_unix.so"),
            (0, "auth required pam_smsotp.so"),
        ];
        assert_eq!(kinds(&required), ["pam.code-after-failed-password"]);
        let ignored = [
            (0, "auth [success=ok default=ignore] pam_unix.so"),
            (0, "auth required pam_smsotp.so"),
        ];
        let e = entries(&ignored);
        let f = findings(&e, &walk(&e), 1);
        assert!(
            f[0].message.ends_with("a right code alone logs in"),
            "{}",
            f[0].message
        );
        let jump = [
            (0, "auth [success=1 default=ignore] pam_unix.so"),
            (0, "auth required pam_smsotp.so"),
            (0, "auth required pam_permit.so"),
        ];
        assert_eq!(
            kinds(&jump),
            ["pam.code-after-failed-password", "pam.jump-over"]
        );
        // A jump to the end leaves no verdict: libpam fails the stack, so
        // it is no way around the code (Debian's common-auth primes the
        // verdict with pam_permit for this reason).
        let to_the_end = [
            (0, "auth [success=2 default=ignore] pam_unix.so"),
            (0, "auth requisite pam_deny.so"),
            (0, "auth required pam_smsotp.so"),
        ];
        assert!(kinds(&to_the_end).is_empty(), "{:?}", kinds(&to_the_end));
    }

    #[test]
    fn a_module_line_that_falls_into_pam_deny_never_logs_in() {
        let lines = [
            (0, "auth requisite pam_unix.so"),
            (0, "auth required pam_smsotp.so"),
            (0, "auth required pam_deny.so"),
        ];
        assert_eq!(kinds(&lines), ["pam.code-never-succeeds"]);
    }

    #[test]
    fn a_skip_that_falls_into_pam_deny_is_a_warning() {
        let lines = [
            (0, "auth requisite pam_unix.so"),
            (0, "auth [success=done default=die] pam_smsotp.so"),
            (0, "auth required pam_deny.so"),
        ];
        assert_eq!(kinds(&lines), ["pam.skip-denies"]);
    }
}
