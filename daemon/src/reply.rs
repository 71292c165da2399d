//! Answers every request handler shares: a malformed request, and the one
//! way a store failure reaches a client (logins, admin requests and
//! step-up codes alike), so the user sees the same sentence wherever the
//! store failed.

use crate::store::StoreError;
use smsotp_proto::{ErrorKind, Response};
use tracing::warn;

pub fn bad_request(message: impl Into<String>) -> Response {
    Response::Error {
        kind: ErrorKind::BadRequest,
        message: message.into(),
    }
}

/// Fail closed: the request is denied. The detail (path, SQL error,
/// deadline) is for the log only.
pub fn store_failed(e: StoreError) -> Response {
    warn!(event = "store_error", error = %e, "state store failed; denying");
    Response::Error {
        kind: ErrorKind::Internal,
        message: "the SMS code service cannot record its state; ask your administrator".into(),
    }
}
