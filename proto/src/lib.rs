//! The contract between `pam_smsotp.so`, `smsotpd` and `smsotpctl`.
//!
//! A frame is a 4-byte big-endian length followed by that many bytes of JSON.
//! Every connection starts with [`Request::Hello`]; the daemon answers with
//! its own [`Response::Hello`] or refuses a version it does not speak. The
//! protocol version is bumped whenever a message changes, so the module and
//! the daemon can be upgraded separately and still fail clearly.

pub mod client;
mod connect;
pub mod frame;
pub mod limits;
pub mod message;
pub mod secret;
pub mod sockets;
mod store;

pub use client::{Client, ClientError};
pub use frame::FrameError;
pub use message::{
    check_user, BeginRequest, ChallengeInfo, CodeAlphabet, ErrorKind, HealthCheck, MaskedMobile,
    Request, Response, SkipReason, StepUpInfo, StoreHealth, StoreKind, TableCopy, UserStatus,
    ValidationError, VerifyMethod,
};
pub use secret::Secret;

/// Version of the message set below. Bump on any change to a message.
/// 3: self-service backup codes and opt-out take an SMS step-up
/// (`code` in the request, `step_up` in the answer).
/// 4: the challenge says the user's language (`lang`).
pub const PROTOCOL_VERSION: u32 = 4;
/// The oldest protocol the daemon still serves. 4 only added a field to
/// an answer, so a module of protocol 3 (still loaded in a running sshd
/// during an upgrade) keeps working; it gets answers without that field.
pub const MIN_PROTOCOL_VERSION: u32 = 3;
