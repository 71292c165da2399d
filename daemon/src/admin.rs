//! Requests from `smsotpctl`: status, numbers, unlock, backup codes,
//! opt-out, test messages. Root may act for anyone; other callers only for
//! themselves and only where noted; new backup codes and opting out take a
//! fresh SMS code from them ([`crate::stepup`]). Every change is audited.

use crate::authz::Peer;
use crate::numbers::lookup;
use crate::providers::{SendMeta, Sms};
use crate::ratelimit::{InFlight, Limited};
use crate::reply::store_failed as internal;
use crate::send::{deliver, Failure};
use crate::state::{Runtime, State};
use crate::stepup::{self, Action};
use crate::store::LockStatus;
use smsotp_config::{Mobile, StoreBackend};
use smsotp_proto::{ErrorKind, Request, Response, Secret, StoreKind, UserStatus};
use std::sync::Arc;
use std::time::Instant;
use tracing::{info, warn};

fn refuse(kind: ErrorKind, message: impl Into<String>) -> Response {
    Response::Error {
        kind,
        message: message.into(),
    }
}

/// The login name of a non-root peer, through NSS (may block: LDAP).
async fn caller_name(peer: Peer) -> Option<String> {
    tokio::task::spawn_blocking(move || {
        nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(peer.uid))
            .ok()
            .flatten()
            .map(|u| u.name)
    })
    .await
    .ok()
    .flatten()
}

async fn self_or_root(peer: Peer, user: &str) -> Result<(), Response> {
    if peer.uid == 0 || caller_name(peer).await.as_deref() == Some(user) {
        Ok(())
    } else {
        Err(refuse(
            ErrorKind::PermissionDenied,
            "only root may act on another user's account",
        ))
    }
}

fn root_only(peer: Peer) -> Result<(), Response> {
    if peer.uid == 0 {
        Ok(())
    } else {
        Err(refuse(ErrorKind::PermissionDenied, "only root may do this"))
    }
}

pub async fn handle(state: &Arc<State>, peer: Peer, req: Request) -> Response {
    let rt = state.runtime();
    let result = match req {
        Request::Status { user } => status(state, &rt, peer, &user).await,
        Request::SetMobile { user, mobile } => set_mobile(state, &rt, peer, &user, &mobile).await,
        Request::RemoveUser { user } => remove(state, peer, &user).await,
        Request::Unlock { user } => unlock(state, peer, &user).await,
        Request::GenerateBackupCodes { user, code } => {
            backup_codes(state, &rt, peer, &user, code).await
        }
        Request::SetOptOut {
            user,
            opted_out,
            code,
        } => opt_out(state, &rt, peer, &user, opted_out, code).await,
        Request::TestSms { user } => test_sms(state, &rt, peer, &user).await,
        Request::ImportStore { path } => Ok(crate::store_import::import(state, peer, &path).await),
        Request::StoreCheck => Ok(crate::store_probe::check(state, peer).await),
        _ => Err(refuse(ErrorKind::BadRequest, "not an admin request")),
    };
    result.unwrap_or_else(|refusal| refusal)
}

async fn status(state: &State, rt: &Runtime, peer: Peer, user: &str) -> Result<Response, Response> {
    self_or_root(peer, user).await?;
    let (mobile, mobile_source) = crate::numbers::describe(state, rt, user)
        .await
        .map_err(internal)?;
    // The rest of the lock on the store's clock, the one the login judges.
    let LockStatus { now, lock } = state.store.lock_state(user).await.map_err(internal)?;
    Ok(Response::Status(UserStatus {
        user: user.to_string(),
        mobile,
        mobile_source,
        locked: lock.locked_until.is_some(),
        locked_for_secs: lock.locked_until.map(|u| (u - now).max(0) as u64),
        recent_failures: lock.failures,
        lockouts: lock.lockouts,
        backup_codes_left: state
            .store
            .backup_codes_left(user)
            .await
            .map_err(internal)?,
        opted_out: state.store.opted_out(user).await.map_err(internal)?,
        store: match rt.config.store.backend {
            StoreBackend::Sqlite => StoreKind::Sqlite,
            StoreBackend::Postgres(_) => StoreKind::Postgres,
        },
    }))
}

async fn set_mobile(
    state: &State,
    rt: &Runtime,
    peer: Peer,
    user: &str,
    typed: &str,
) -> Result<Response, Response> {
    root_only(peer)?;
    if rt.users.mobile(user).is_some() {
        return Err(refuse(
            ErrorKind::BadRequest,
            format!(
                "{user}'s number comes from the users file; change it there ({})",
                rt.config.users_file.display()
            ),
        ));
    }
    let mobile = Mobile::parse(typed.trim())
        .map_err(|e| refuse(ErrorKind::BadRequest, format!("number {e}")))?;
    if !crate::policy::country_allowed(&rt.config.send_budget, &mobile) {
        return Err(refuse(
            ErrorKind::BadRequest,
            "that country is not in send_budget.allowed_countries",
        ));
    }
    state
        .store
        .set_mobile(user, mobile.e164())
        .await
        .map_err(internal)?;
    info!(event = "mobile_set", user, to = %rt.log_mobile(&mobile), peer_uid = peer.uid, "number stored by admin");
    Ok(Response::Done {
        message: format!("{user}: number set to {}", mobile.masked(4)),
    })
}

async fn remove(state: &State, peer: Peer, user: &str) -> Result<Response, Response> {
    root_only(peer)?;
    let any = state.store.remove_user(user).await.map_err(internal)?;
    info!(
        event = "user_removed",
        user,
        peer_uid = peer.uid,
        removed = any,
        "stored state removed"
    );
    Ok(Response::Done {
        message: if any {
            format!("{user}: stored number, backup codes, counters and opt-out removed")
        } else {
            format!("{user}: nothing was stored")
        },
    })
}

async fn unlock(state: &State, peer: Peer, user: &str) -> Result<Response, Response> {
    root_only(peer)?;
    let was = state.store.unlock(user).await.map_err(internal)?;
    info!(
        event = "unlocked",
        user,
        peer_uid = peer.uid,
        "lockout lifted by admin"
    );
    Ok(Response::Done {
        message: if was {
            format!("{user}: unlocked and failure count cleared")
        } else {
            format!("{user}: was not locked")
        },
    })
}

/// Callers other than root: their uid's one request in flight, or why not.
fn self_service(state: &State, peer: Peer) -> Result<Option<InFlight<'_>>, Response> {
    if peer.uid == 0 {
        return Ok(None);
    }
    state
        .self_service
        .begin(peer.uid)
        .map(Some)
        .map_err(limited)
}

fn limited(l: Limited) -> Response {
    match l {
        Limited::InFlight => refuse(ErrorKind::Busy, l.to_string()),
        Limited::TooMany { retry_after } => refuse(
            ErrorKind::PermissionDenied,
            format!(
                "{l}; try again in {} min or ask your administrator",
                retry_after.as_secs().div_ceil(60)
            ),
        ),
    }
}

async fn backup_codes(
    state: &Arc<State>,
    rt: &Runtime,
    peer: Peer,
    user: &str,
    code: Option<Secret>,
) -> Result<Response, Response> {
    self_or_root(peer, user).await?;
    if !rt.config.backup_codes.enabled {
        return Err(refuse(
            ErrorKind::BadRequest,
            "backup codes are disabled (backup_codes.enabled = false)",
        ));
    }
    let in_flight = self_service(state, peer)?;
    if let Some(f) = &in_flight {
        // Refused before an SMS is spent on a set that could not be made.
        f.may_make_set(Instant::now()).map_err(limited)?;
        stepup::require(state, rt, peer, user, Action::BackupCodes, code.as_ref()).await?;
        f.make_set(Instant::now()).map_err(limited)?;
    }
    let count = rt.config.backup_codes.count;
    let made = state.hashing.generate(count).await.map_err(|e| {
        warn!(event = "backup_codes_failed", user, error = %e, "backup code generation failed");
        refuse(ErrorKind::Internal, "backup code generation failed")
    })?;
    let pairs = made
        .iter()
        .map(|c| (c.id.clone(), c.hash.clone()))
        .collect();
    state
        .store
        .replace_backup_codes(user, pairs)
        .await
        .map_err(internal)?;
    info!(
        event = "backup_codes_generated",
        user,
        count,
        peer_uid = peer.uid,
        "backup codes replaced"
    );
    notify_new_codes(state, rt, peer, user).await;
    Ok(Response::BackupCodes {
        codes: made
            .iter()
            .map(|c| Secret::new(c.display.as_str()))
            .collect(),
    })
}

/// Tells the phone that a new set exists, whoever made it: a set the
/// user did not ask for is how an intruder keeps a way in.
async fn notify_new_codes(state: &State, rt: &Runtime, peer: Peer, user: &str) {
    let Ok(Some((mobile, _))) = lookup(state, rt, user).await else {
        return;
    };
    let by = if peer.uid == 0 {
        "an administrator"
    } else {
        "your account"
    };
    let body = format!(
        "New backup codes for {user} on {} were made by {by}; earlier codes no longer work. \
         Not you? Tell your administrator.",
        rt.hostname
    );
    crate::notice::send(rt, user, &mobile, body, "backup_codes_notice").await;
}

async fn opt_out(
    state: &Arc<State>,
    rt: &Runtime,
    peer: Peer,
    user: &str,
    opted_out: bool,
    code: Option<Secret>,
) -> Result<Response, Response> {
    self_or_root(peer, user).await?;
    let p = &rt.config.policy;
    let anywhere_optional = !p.default.mandatory || p.services.values().any(|s| !s.mandatory);
    if opted_out && !anywhere_optional {
        return Err(refuse(
            ErrorKind::PermissionDenied,
            "SMS codes are mandatory on this host",
        ));
    }
    // Opting back in only makes the account stronger: no step-up.
    let _in_flight = if opted_out {
        let f = self_service(state, peer)?;
        stepup::require(state, rt, peer, user, Action::OptOut, code.as_ref()).await?;
        f
    } else {
        None
    };
    state
        .store
        .set_opt_out(user, opted_out)
        .await
        .map_err(internal)?;
    info!(
        event = if opted_out { "opted_out" } else { "opted_in" },
        user,
        peer_uid = peer.uid,
        "opt-out changed"
    );
    Ok(Response::Done {
        message: if opted_out {
            format!("{user}: opted out of SMS codes where they are not mandatory")
        } else {
            format!("{user}: SMS codes are on")
        },
    })
}

async fn test_sms(
    state: &State,
    rt: &Runtime,
    peer: Peer,
    user: &str,
) -> Result<Response, Response> {
    root_only(peer)?;
    let Some((mobile, _)) = lookup(state, rt, user)
        .await
        .map_err(|e| internal(e.into()))?
    else {
        return Err(refuse(
            ErrorKind::BadRequest,
            format!("{user} has no mobile number"),
        ));
    };
    let sms = Sms {
        to: mobile.clone(),
        body: zeroize::Zeroizing::new(format!(
            "smsotp test message from {}. No action needed.",
            rt.hostname
        )),
    };
    let meta = SendMeta {
        validity: None,
        host: Some(rt.hostname.clone()),
        service: Some("smsotpctl".into()),
        deadline: None,
        // No code to spell: a voice provider reads the text.
        spoken: None,
    };
    match deliver(rt, &sms, meta).await {
        Ok(delivery) => {
            info!(event = "test_sent", user, to = %rt.log_mobile(&mobile), provider = %delivery.provider, "test message sent");
            // Every try, so an admin sees a failover or a retry happen.
            let tries: Vec<String> = delivery.attempts.iter().map(|a| a.to_string()).collect();
            Ok(Response::TestSent {
                provider: delivery.provider,
                detail: format!(
                    "{} ({}, {} segment(s)); tries: {}",
                    delivery.receipt.detail,
                    delivery.encoding,
                    delivery.segments,
                    tries.join("; ")
                ),
            })
        }
        Err(Failure::Chain(e)) => {
            warn!(event = "test_failed", user, to = %rt.log_mobile(&mobile), error = %e, "test message failed");
            Err(refuse(ErrorKind::Internal, e.to_string()))
        }
        Err(Failure::Timeout) => Err(refuse(
            ErrorKind::Internal,
            "the providers did not answer within the send budget",
        )),
    }
}
