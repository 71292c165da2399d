//! Which number a user's codes go to: the sources in the configured order
//! (`directory.sources`; without a `[directory]` section users.toml, then
//! the store). The first source with a number wins; the others are not
//! asked, so a user with a users.toml entry needs no directory at all.
//!
//! The directory is asked only for accounts NSS knows: a name NSS does not
//! know gets a code only with an exact users.toml entry (see `account`),
//! and a case-insensitive directory must not hand `ALICE` alice's number.

use super::DirectoryError;
use crate::state::{Runtime, State};
use crate::store::StoreError;
use smsotp_config::{Mobile, NumberSource};
use smsotp_proto::{ErrorKind, Response};
use tracing::warn;

const WITHOUT_DIRECTORY: [NumberSource; 2] = [NumberSource::UsersFile, NumberSource::Enrolled];

#[derive(Debug, thiserror::Error)]
pub enum NumberError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Directory(#[from] DirectoryError),
}

/// For callers that can only fail with a store error (the lockout notice,
/// admin requests): the login still fails closed, and the log says why.
impl From<NumberError> for StoreError {
    fn from(e: NumberError) -> StoreError {
        match e {
            NumberError::Store(e) => e,
            NumberError::Directory(e) => StoreError::Backend {
                path: "directory".into(),
                message: e.to_string(),
            },
        }
    }
}

/// The user's number and where it came from. `known`: NSS knows the
/// account (`user` is then its canonical name).
pub async fn lookup(
    state: &State,
    rt: &Runtime,
    user: &str,
    known: bool,
) -> Result<Option<(Mobile, NumberSource)>, NumberError> {
    let order = match &rt.config.directory {
        Some(d) => &d.sources[..],
        None => &WITHOUT_DIRECTORY[..],
    };
    for &source in order {
        let found = match source {
            NumberSource::UsersFile => rt.users.mobile(user).cloned(),
            NumberSource::Enrolled => state
                .store
                .mobile(user)
                .await?
                .and_then(|s| Mobile::parse(&s).ok()),
            NumberSource::Directory => match &rt.directory {
                Some(d) if known => d.mobile(user).await?,
                _ => None,
            },
        };
        if let Some(m) = found {
            return Ok(Some((m, source)));
        }
    }
    Ok(None)
}

/// What `smsotpctl status` shows: the masked number and its source. A
/// directory that cannot be asked is shown as such instead of failing
/// the whole status (the lockout and backup-code lines still help).
pub async fn describe(
    state: &State,
    rt: &Runtime,
    user: &str,
) -> Result<(Option<String>, String), StoreError> {
    let known = crate::account::resolve(user).await.is_known();
    let visible = usize::from(rt.config.mask_visible_digits);
    Ok(match lookup(state, rt, user, known).await {
        Ok(Some((m, source))) => (Some(m.masked(visible)), source.as_str().to_string()),
        Ok(None) => (None, "none".to_string()),
        Err(NumberError::Directory(e)) => {
            warn!(event = "directory_unavailable", user, error = %e, "status without the directory");
            (None, "directory unreachable".to_string())
        }
        Err(NumberError::Store(e)) => return Err(e),
    })
}

/// The answer to a login whose number could not be looked up: denied,
/// whatever `no_mobile` says ("cannot ask" is not "no number"). The
/// module turns `Internal` into PAM_AUTHINFO_UNAVAIL in every failmode.
pub fn denied(user: &str, service: &str, e: &DirectoryError) -> Response {
    warn!(event = "directory_unavailable", user, service, error = %e, "cannot look up the number; denied");
    Response::Error {
        kind: ErrorKind::Internal,
        message: "the directory that holds your phone number cannot be reached; try again later or ask your administrator".into(),
    }
}
