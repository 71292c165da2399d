//! A service's `auth` stack as libpam loads it: `include` (and Debian's
//! `@include`) inline the file's lines at the same level, `substack` adds a
//! marker line and the file's lines one level deeper, so that `done`, `die`
//! and jumps inside it stay inside it (libpam/pam_handlers.c, `stack_level`).

use super::parse::{parse, Control};
use crate::doctor::{Finding, Host, Severity};
use std::path::Path;

/// libpam's PAM_SUBSTACK_MAX_LEVEL; deeper nesting fails the stack.
const MAX_INCLUDE_DEPTH: usize = 16;

/// One `auth` line of a loaded stack, or the marker of a `substack` line.
#[derive(Debug, Clone)]
pub struct Entry {
    /// `/etc/pam.d/common-auth:17`
    pub origin: String,
    /// The `include`/`substack` lines that led here, outermost first
    /// (`/etc/pam.d/sudo:3 include system-auth`), for explaining a path.
    pub via: Vec<String>,
    /// 0 for the service's own stack, +1 inside each substack.
    pub level: usize,
    pub control: Control,
    /// The module as written (a name or an absolute path); empty for a
    /// substack marker.
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

    pub fn is_substack(&self) -> bool {
        matches!(self.control, Control::Substack(_))
    }

    pub fn has_arg(&self, arg: &str) -> bool {
        self.args.iter().any(|a| a == arg)
    }

    /// The value of a `key=value` argument.
    pub fn arg(&self, key: &str) -> Option<&str> {
        self.args
            .iter()
            .find_map(|a| a.strip_prefix(key)?.strip_prefix('='))
    }

    /// `origin control module`, as a step of an explanation.
    pub fn describe(&self) -> String {
        if self.module.is_empty() {
            format!("{} {}", self.origin, self.control.text())
        } else {
            format!(
                "{} {} {}",
                self.origin,
                self.control.text(),
                self.module_name()
            )
        }
    }
}

/// The loaded `auth` stack of a service file, plus findings about files
/// that could not be read.
pub fn auth_stack(host: &Host, file: &str) -> (Vec<Entry>, Vec<Finding>) {
    let mut loader = Loader {
        host,
        entries: Vec::new(),
        problems: Vec::new(),
    };
    loader.load(file, 0, 0, &[]);
    (loader.entries, loader.problems)
}

pub fn pam_file(name: &str) -> String {
    if name.starts_with('/') {
        name.to_string()
    } else {
        format!("/etc/pam.d/{name}")
    }
}

struct Loader<'h> {
    host: &'h Host,
    entries: Vec<Entry>,
    problems: Vec<Finding>,
}

impl Loader<'_> {
    fn load(&mut self, file: &str, depth: usize, level: usize, via: &[String]) {
        let shown = pam_file(file);
        if depth > MAX_INCLUDE_DEPTH {
            self.problems.push(Finding::new(
                "pam.include-loop",
                Severity::Error,
                shown,
                "includes nest too deep (a loop?); libpam refuses such a stack",
            ));
            return;
        }
        let text = match std::fs::read_to_string(self.host.path(Path::new(&shown))) {
            Ok(t) => t,
            Err(e) => {
                self.problems.push(
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
            let is_auth = matches!(line.kind.as_str(), "auth" | "-auth" | "@include");
            if !is_auth {
                continue;
            }
            let origin = format!("{shown}:{}", line.lineno);
            let entry = Entry {
                origin: origin.clone(),
                via: via.to_vec(),
                level,
                control: line.control.clone(),
                module: line.module,
                args: line.args,
                dash: line.kind.starts_with('-'),
            };
            let mut inner = via.to_vec();
            inner.push(entry.describe());
            match &line.control {
                Control::Include(inc) => self.load(inc, depth + 1, level, &inner),
                Control::Substack(inc) => {
                    self.entries.push(entry);
                    self.load(inc, depth + 1, level + 1, &inner);
                }
                _ => self.entries.push(entry),
            }
        }
    }
}
