//! What libpam does with a loaded `auth` stack: every path through it, for
//! every answer each module can give that matters here, walked the way
//! Linux-PAM 1.5's `_pam_dispatch_aux` (libpam/pam_dispatch.c) walks its
//! handlers. Checking lines one by one cannot see what `include` and
//! `substack` do to `sufficient`: a `done` inside an included file ends the
//! whole stack, inside a substack only the substack, and a failed substack
//! lets the service's next lines run anyway.

use super::parse::Control;
use super::stack::Entry;

/// Modules that check a password (the first factor).
pub const PASSWORD_MODULES: &[&str] = &[
    "pam_unix.so",
    "pam_sss.so",
    "pam_ldap.so",
    "pam_krb5.so",
    "pam_winbind.so",
    "pam_systemd_home.so",
    "pam_userdb.so",
    "pam_pwquality.so",
];

/// More paths than this and the stack is not worth exploring in full (a
/// real one has a few dozen).
const MAX_PATHS: usize = 4096;

/// libpam's PAM_SUBSTACK_MAX_LEVEL (levels 0..=16 can hold a state).
const LEVELS: usize = 17;

/// The PAM answers the walk tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ret {
    Success,
    AuthErr,
    Ignore,
    /// PAM_PERM_DENIED: libpam's PAM_MUST_FAIL_CODE for a broken line.
    PermDenied,
}

impl Ret {
    /// The name a `[value=action]` control uses.
    pub fn name(self) -> &'static str {
        match self {
            Ret::Success => "success",
            Ret::AuthErr => "auth_err",
            Ret::Ignore => "ignore",
            Ret::PermDenied => "perm_denied",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Ok,
    Done,
    Bad,
    Die,
    Ignore,
    Reset,
    Jump(usize),
}

/// What a line's control does with a module's answer.
pub fn action(control: &Control, ret: Ret) -> Action {
    let simple = |on_success: Action, on_ignore: Action, otherwise: Action| match ret {
        Ret::Success => on_success,
        Ret::Ignore => on_ignore,
        _ => otherwise,
    };
    match control {
        Control::Required => simple(Action::Ok, Action::Ignore, Action::Bad),
        Control::Requisite => simple(Action::Ok, Action::Ignore, Action::Die),
        Control::Optional => simple(Action::Ok, Action::Ignore, Action::Ignore),
        Control::Sufficient => simple(Action::Done, Action::Ignore, Action::Ignore),
        Control::Bracket(_) => match control.bracket_action(ret.name()).unwrap_or("bad") {
            "ok" => Action::Ok,
            "done" => Action::Done,
            "die" => Action::Die,
            "ignore" => Action::Ignore,
            "reset" => Action::Reset,
            n => match n.parse::<usize>() {
                Ok(n) if n > 0 => Action::Jump(n),
                // libpam treats a control it cannot parse as all `bad`.
                _ => Action::Bad,
            },
        },
        Control::Include(_) | Control::Substack(_) | Control::Unknown(_) => Action::Bad,
    }
}

pub fn is_password(e: &Entry) -> bool {
    PASSWORD_MODULES.contains(&e.module_name())
}

/// The answers worth trying for a line. Modules this check knows nothing
/// about (pam_env, pam_faildelay, ...) succeed or step aside; assuming
/// they could fail would report every stack.
fn answers(e: &Entry) -> &'static [Ret] {
    if matches!(e.control, Control::Unknown(_)) {
        return &[Ret::PermDenied];
    }
    if e.is_smsotp() {
        return &[Ret::Success, Ret::AuthErr, Ret::Ignore];
    }
    match e.module_name() {
        "pam_deny.so" => &[Ret::AuthErr],
        "pam_permit.so" => &[Ret::Success],
        "pam_rootok.so" => &[Ret::Success, Ret::AuthErr],
        _ if is_password(e) => &[Ret::Success, Ret::AuthErr],
        _ => &[Ret::Success, Ret::Ignore],
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Impression {
    Undef,
    Positive,
    Negative,
}

/// One module run on a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Index into the entries.
    pub entry: usize,
    pub ret: Ret,
    pub action: Action,
    /// The stack's verdict so far, before this module's answer counted.
    pub before: Impression,
    /// Where the walk went on (an index past the end: the stack ended).
    pub next: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    pub steps: Vec<Step>,
    /// pam_authenticate returns PAM_SUCCESS.
    pub success: bool,
}

#[derive(Debug, Default)]
pub struct Walk {
    pub paths: Vec<Path>,
    /// MAX_PATHS was reached; `paths` is a part of them.
    pub truncated: bool,
}

#[derive(Clone)]
struct State {
    impression: Impression,
    status: Ret,
    /// (impression, status) when each substack level was entered, for `reset`.
    saved: [(Impression, Ret); LEVELS],
}

/// Every path through `entries`.
pub fn walk(entries: &[Entry]) -> Walk {
    let start = State {
        impression: Impression::Undef,
        status: Ret::PermDenied,
        saved: [(Impression::Undef, Ret::PermDenied); LEVELS],
    };
    let mut out = Walk::default();
    go(entries, 0, 0, start, Vec::new(), &mut out);
    out
}

/// The last index of the run of lines at `level` or deeper that follows `i`:
/// where a `done`/`die` decision skips to.
fn end_of_level(entries: &[Entry], mut i: usize, level: usize) -> usize {
    while i + 1 < entries.len() && entries[i + 1].level >= level {
        i += 1;
    }
    i
}

/// Where a jump of `n` from `i` lands (the index before the target) and
/// whether it stayed inside its own level; a substack counts as one line.
fn jump(entries: &[Entry], mut i: usize, level: usize, mut n: usize) -> (usize, bool) {
    while i + 1 < entries.len() && entries[i + 1].level >= level && n > 0 {
        i += 1;
        while i + 1 < entries.len() && entries[i + 1].level > level {
            i += 1;
        }
        n -= 1;
    }
    (i, n == 0)
}

fn go(
    entries: &[Entry],
    mut i: usize,
    mut prev_level: usize,
    mut st: State,
    steps: Vec<Step>,
    out: &mut Walk,
) {
    // Substack markers are not run; they only open a level.
    while i < entries.len() {
        let level = entries[i].level.min(LEVELS - 1);
        if prev_level < level {
            st.saved[level] = (st.impression, st.status);
        }
        if !entries[i].is_substack() {
            break;
        }
        prev_level = level;
        i += 1;
    }
    if out.paths.len() >= MAX_PATHS {
        out.truncated = true;
        return;
    }
    let Some(e) = entries.get(i) else {
        let success = st.status == Ret::Success && st.impression == Impression::Positive;
        out.paths.push(Path { steps, success });
        return;
    };
    let level = e.level.min(LEVELS - 1);
    for &ret in answers(e) {
        let mut st = st.clone();
        let act = action(&e.control, ret);
        let before = st.impression;
        let mut last = i;
        let decide = |at: usize| end_of_level(entries, at, level);
        match act {
            Action::Reset => (st.impression, st.status) = st.saved[level],
            Action::Ok | Action::Done => {
                if st.impression == Impression::Undef
                    || (st.impression == Impression::Positive && st.status == Ret::Success)
                {
                    st.impression = Impression::Positive;
                    st.status = ret;
                }
                if st.impression == Impression::Positive && act == Action::Done {
                    last = decide(i);
                }
            }
            Action::Bad | Action::Die => {
                if st.impression != Impression::Negative {
                    st.impression = Impression::Negative;
                    st.status = if ret == Ret::Ignore {
                        Ret::PermDenied
                    } else {
                        ret
                    };
                }
                if act == Action::Die {
                    last = decide(i);
                }
            }
            Action::Ignore => {}
            Action::Jump(n) => {
                let (to, inside) = jump(entries, i, level, n);
                last = to;
                if !inside {
                    // "bad jump in stack": the stack fails.
                    st.impression = Impression::Negative;
                    st.status = Ret::PermDenied;
                }
            }
        }
        let mut steps = steps.clone();
        steps.push(Step {
            entry: i,
            ret,
            action: act,
            before,
            next: last + 1,
        });
        go(entries, last + 1, level, st, steps, out);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::doctor::pam::parse::parse;

    /// Entries from `(level, line)` pairs; a `substack` line is a marker.
    pub(crate) fn entries(lines: &[(usize, &str)]) -> Vec<Entry> {
        lines
            .iter()
            .enumerate()
            .map(|(n, (level, text))| {
                let l = parse(text).remove(0);
                Entry {
                    origin: format!("t:{}", n + 1),
                    via: Vec::new(),
                    level: *level,
                    control: l.control,
                    module: l.module,
                    args: l.args,
                    dash: false,
                }
            })
            .collect()
    }

    /// The outcome of the path where the modules named answer as given
    /// (everything else: its first answer).
    fn outcome(w: &Walk, e: &[Entry], want: &[(&str, Ret)]) -> (bool, Vec<String>) {
        let p = w
            .paths
            .iter()
            .find(|p| {
                p.steps.iter().all(|s| {
                    let name = e[s.entry].module_name();
                    match want.iter().find(|(m, _)| *m == name) {
                        Some((_, r)) => s.ret == *r,
                        None => s.ret == answers(&e[s.entry])[0],
                    }
                })
            })
            .expect("a path with those answers");
        let ran = p
            .steps
            .iter()
            .map(|s| e[s.entry].module_name().to_string())
            .collect();
        (p.success, ran)
    }

    const RHEL_AUTH: &[&str] = &[
        "auth required pam_env.so",
        "auth sufficient pam_unix.so nullok",
        "auth required pam_deny.so",
    ];

    #[test]
    fn include_done_ends_the_whole_stack() {
        let mut lines: Vec<(usize, &str)> = RHEL_AUTH.iter().map(|l| (0, *l)).collect();
        lines.push((0, "auth required pam_smsotp.so"));
        let e = entries(&lines);
        let w = walk(&e);
        assert!(!w.truncated);
        let (ok, ran) = outcome(&w, &e, &[("pam_unix.so", Ret::Success)]);
        assert!(ok);
        assert!(!ran.contains(&"pam_smsotp.so".to_string()), "{ran:?}");
        let (ok, ran) = outcome(&w, &e, &[("pam_unix.so", Ret::AuthErr)]);
        assert!(!ok, "pam_deny fails it");
        assert!(
            ran.contains(&"pam_smsotp.so".to_string()),
            "required deny goes on: {ran:?}"
        );
    }

    #[test]
    fn substack_done_ends_only_the_substack() {
        let mut lines = vec![(0, "auth substack password-auth")];
        lines.extend(RHEL_AUTH.iter().map(|l| (1, *l)));
        lines.push((0, "auth required pam_smsotp.so"));
        let e = entries(&lines);
        let w = walk(&e);
        let right = [
            ("pam_unix.so", Ret::Success),
            ("pam_smsotp.so", Ret::Success),
        ];
        let (ok, ran) = outcome(&w, &e, &right);
        assert!(ok);
        assert_eq!(ran, ["pam_env.so", "pam_unix.so", "pam_smsotp.so"]);
        let wrong = [
            ("pam_unix.so", Ret::AuthErr),
            ("pam_smsotp.so", Ret::Success),
        ];
        let (ok, ran) = outcome(&w, &e, &wrong);
        assert!(!ok);
        assert!(
            ran.contains(&"pam_smsotp.so".to_string()),
            "the code after a wrong password: {ran:?}"
        );
    }

    #[test]
    fn substack_die_does_not_end_the_parent() {
        let e = entries(&[
            (0, "auth substack x"),
            (1, "auth requisite pam_unix.so"),
            (0, "auth required pam_smsotp.so"),
        ]);
        let w = walk(&e);
        let (ok, ran) = outcome(&w, &e, &[("pam_unix.so", Ret::AuthErr)]);
        assert!(!ok);
        assert_eq!(ran, ["pam_unix.so", "pam_smsotp.so"]);
    }

    #[test]
    fn jumps_count_a_substack_as_one_and_cannot_leave_one() {
        let e = entries(&[
            (0, "auth [success=1 default=ignore] pam_unix.so"),
            (0, "auth substack x"),
            (1, "auth required pam_deny.so"),
            (1, "auth required pam_deny.so"),
            (0, "auth required pam_permit.so"),
        ]);
        let w = walk(&e);
        let (ok, ran) = outcome(&w, &e, &[("pam_unix.so", Ret::Success)]);
        assert!(ok, "success=1 skips the whole substack");
        assert_eq!(ran, ["pam_unix.so", "pam_permit.so"]);
        let e = entries(&[
            (0, "auth substack x"),
            (1, "auth [success=2 default=ignore] pam_unix.so"),
            (0, "auth required pam_permit.so"),
            (0, "auth required pam_permit.so"),
        ]);
        let w = walk(&e);
        let (ok, ran) = outcome(&w, &e, &[("pam_unix.so", Ret::Success)]);
        assert!(!ok, "a jump out of a substack is a bad jump");
        assert_eq!(ran, ["pam_unix.so", "pam_permit.so", "pam_permit.so"]);
    }

    #[test]
    fn controls_map_answers_like_libpam() {
        let b = parse("auth [success=1 ignore=1 default=die] m.so")
            .remove(0)
            .control;
        assert_eq!(action(&b, Ret::Success), Action::Jump(1));
        assert_eq!(action(&b, Ret::AuthErr), Action::Die);
        let b = parse("auth [success=ok] m.so").remove(0).control;
        assert_eq!(action(&b, Ret::AuthErr), Action::Bad, "unset is bad");
        assert_eq!(action(&Control::Sufficient, Ret::AuthErr), Action::Ignore);
        assert_eq!(action(&Control::Requisite, Ret::Ignore), Action::Ignore);
    }

    #[test]
    fn ignore_alone_is_not_success_and_reset_restores() {
        let e = entries(&[(0, "auth required pam_smsotp.so")]);
        let w = walk(&e);
        let (ok, _) = outcome(&w, &e, &[("pam_smsotp.so", Ret::Ignore)]);
        assert!(!ok, "a stack of nothing but ignores fails");
        let e = entries(&[
            (0, "auth required pam_permit.so"),
            (0, "auth substack x"),
            (1, "auth required pam_deny.so"),
            (1, "auth [default=reset] pam_permit.so"),
        ]);
        let w = walk(&e);
        assert!(
            w.paths.iter().all(|p| p.success),
            "reset goes back to the verdict the substack started with"
        );
    }
}
