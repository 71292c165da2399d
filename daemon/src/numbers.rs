//! Where a user's number comes from, written once: the sources in the
//! configured order (`[directory] sources`; without a `[directory]`
//! section users.toml, then the number enrolled in the store). The first
//! source with a number wins; the ones after it are not asked, so a user
//! with a users.toml entry needs no directory at all.
//!
//! Logins read the store's number inside their own transaction: [`plan`]
//! asks the sources that are not the store *before* it (the directory is a
//! network round trip and must not sit inside a transaction) and says how
//! the store's number ranks against theirs ([`Number`]). Admin requests,
//! notices and step-up codes call [`lookup`].
//!
//! The directory is asked only for accounts NSS knows: a name NSS does not
//! know gets a code only with an exact users.toml entry (see `account`),
//! and a case-insensitive directory must not hand `ALICE` alice's number.
//! "The directory has no number" and "it cannot be asked" are different
//! answers: the second denies the login whatever `no_mobile` says.

use crate::directory::DirectoryError;
use crate::state::{Runtime, State};
use crate::store::{Number, StoreError};
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
/// admin requests): the request still fails closed, and the log says why.
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

fn order(rt: &Runtime) -> &[NumberSource] {
    match &rt.config.directory {
        Some(d) => &d.sources[..],
        None => &WITHOUT_DIRECTORY[..],
    }
}

/// A source other than the store, asked outside any transaction.
async fn ask(
    rt: &Runtime,
    source: NumberSource,
    user: &str,
    known: bool,
) -> Result<Option<Mobile>, DirectoryError> {
    Ok(match source {
        NumberSource::UsersFile => rt.users.mobile(user).cloned(),
        NumberSource::Directory => match &rt.directory {
            Some(d) if known => d.mobile(user).await?,
            _ => None,
        },
        NumberSource::Enrolled => None,
    })
}

/// The user's number and where it came from, outside a login.
pub async fn lookup(
    state: &State,
    rt: &Runtime,
    user: &str,
) -> Result<Option<(Mobile, NumberSource)>, NumberError> {
    let known = crate::account::resolve(user).await.is_known();
    for &source in order(rt) {
        let found = match source {
            NumberSource::Enrolled => state
                .store
                .mobile(user)
                .await?
                .and_then(|s| Mobile::parse(&s).ok()),
            other => ask(rt, other, user, known).await?,
        };
        if let Some(m) = found {
            return Ok(Some((m, source)));
        }
    }
    Ok(None)
}

/// What the sources other than the store say before a login's store
/// transaction, and how the store's number ranks against theirs.
pub enum Plan {
    /// A source ranked above the store answered (the store's number is
    /// not read), or no source at all may give one.
    Known(Option<(Mobile, NumberSource)>),
    /// The store's number if it has one, else `below`: what the sources
    /// ranked below the store gave (a number, or a directory that could
    /// not be asked, which denies only if the store has none).
    Stored {
        below: Result<Option<(Mobile, NumberSource)>, DirectoryError>,
    },
    /// A source ranked above the store could not be asked: deny.
    Unreachable(DirectoryError),
}

impl Plan {
    /// What the store transaction is told about the number.
    pub fn number(&self) -> Number<'_> {
        match self {
            Plan::Known(Some((m, _))) => Number::Given(m),
            Plan::Known(None) | Plan::Unreachable(_) => Number::Absent,
            Plan::Stored {
                below: Ok(Some((m, _))),
            } => Number::StoredElse(m),
            Plan::Stored { .. } => Number::Stored,
        }
    }

    /// The number the login goes on with, given the store's (read when
    /// [`Plan::number`] asked for it); a directory error when that is the
    /// source that should have answered.
    pub fn resolve(
        self,
        stored: Option<Mobile>,
    ) -> Result<Option<(Mobile, NumberSource)>, DirectoryError> {
        match self {
            Plan::Known(found) => Ok(found),
            Plan::Unreachable(e) => Err(e),
            Plan::Stored { below } => match stored {
                Some(m) => Ok(Some((m, NumberSource::Enrolled))),
                None => below,
            },
        }
    }
}

/// Asks the sources that are not the store, in order, up to the first
/// that answers (or up to the store and then up to the first below it
/// that answers or fails).
pub async fn plan(rt: &Runtime, user: &str, known: bool) -> Plan {
    let sources = order(rt);
    let store_at = sources.iter().position(|s| *s == NumberSource::Enrolled);
    for (i, &source) in sources.iter().enumerate() {
        if Some(i) == store_at {
            let mut below = Ok(None);
            for &later in &sources[i + 1..] {
                below = ask(rt, later, user, known)
                    .await
                    .map(|m| m.map(|m| (m, later)));
                if !matches!(below, Ok(None)) {
                    break;
                }
            }
            return Plan::Stored { below };
        }
        match ask(rt, source, user, known).await {
            Ok(Some(m)) => return Plan::Known(Some((m, source))),
            Ok(None) => {}
            Err(e) => return Plan::Unreachable(e),
        }
    }
    Plan::Known(None)
}

/// What `smsotpctl status` shows: the masked number and its source. A
/// directory that cannot be asked is shown as such instead of failing
/// the whole status (the lockout and backup-code lines still help).
pub async fn describe(
    state: &State,
    rt: &Runtime,
    user: &str,
) -> Result<(Option<String>, String), StoreError> {
    let visible = usize::from(rt.config.mask_visible_digits);
    Ok(match lookup(state, rt, user).await {
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
