//! Which account a login is for. PAM hands over the name as typed; on
//! hosts whose NSS ignores case or trims (SSSD, winbind, AD) `ALICE` and
//! `alice ` are alice's account, and a policy keyed on the typed text
//! would give each spelling its own exemptions and its own guess budget.
//! So every login is resolved through NSS (getpwnam) once, at `Begin`,
//! before any policy, budget, lookup or enrolment, and the canonical name
//! is used from there on (audit lines too).
//!
//! A name NSS does not know is never skipped: sshd, sudo and su never
//! authenticate such a name, so nothing legitimate needs a skip for it,
//! and each unknown spelling must not be a way around the code. It gets a
//! code only with an exact `users.toml` entry; otherwise it is denied (or
//! hidden behind a fake challenge).

/// The outcome of resolving a PAM user name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Account {
    /// NSS knows it; the name is the account's own spelling.
    Known(String),
    /// NSS does not know it (or could not answer): the name as typed.
    Unknown(String),
}

impl Account {
    pub fn name(&self) -> &str {
        match self {
            Account::Known(n) | Account::Unknown(n) => n,
        }
    }

    pub fn is_known(&self) -> bool {
        matches!(self, Account::Known(_))
    }
}

/// Resolves `typed` through NSS on the blocking pool (LDAP and sssd may
/// take their time). An NSS error counts as unknown: the stricter side.
pub async fn resolve(typed: &str) -> Account {
    let name = typed.to_string();
    tokio::task::spawn_blocking(move || lookup(&name))
        .await
        .unwrap_or_else(|_| Account::Unknown(typed.to_string()))
}

fn lookup(typed: &str) -> Account {
    match nix::unistd::User::from_name(typed) {
        Ok(Some(u)) => Account::Known(u.name),
        _ => Account::Unknown(typed.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nss_names_are_canonical_and_other_spellings_unknown() {
        // root exists on every Linux system; the files backend matches
        // names exactly, so other spellings are not root.
        assert_eq!(lookup("root"), Account::Known("root".into()));
        for other in ["ROOT", "Root", "root ", " root", "ro\0ot", ""] {
            let a = lookup(other);
            assert!(!a.is_known(), "{other:?} resolved to {a:?}");
            assert_eq!(a.name(), other);
        }
    }
}
