//! Where a user's number comes from, written once: the directory (today
//! users.toml) first, then the number enrolled in the store. Logins read
//! the store's inside their own transaction ([`crate::store::Number`]);
//! admin requests, notices and step-up codes call [`lookup`].

use crate::state::{Runtime, State};
use crate::store::StoreError;
use smsotp_config::Mobile;

/// Which source gave the number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// users.toml, set by the administrator.
    UsersFile,
    /// Enrolled at login or set with `smsotpctl set-mobile`.
    Enrolled,
}

impl Source {
    /// As `smsotpctl status` shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::UsersFile => "users.toml",
            Source::Enrolled => "enrolled",
        }
    }
}

/// The directory's number, which wins over the store's.
pub fn directory(rt: &Runtime, user: &str) -> Option<(Mobile, Source)> {
    rt.users
        .mobile(user)
        .map(|m| (m.clone(), Source::UsersFile))
}

/// The user's number and its source: the directory, else the store.
pub async fn lookup(
    state: &State,
    rt: &Runtime,
    user: &str,
) -> Result<Option<(Mobile, Source)>, StoreError> {
    if let Some(found) = directory(rt, user) {
        return Ok(Some(found));
    }
    Ok(state
        .store
        .mobile(user)
        .await?
        .and_then(|s| Mobile::parse(&s).ok())
        .map(|m| (m, Source::Enrolled)))
}
