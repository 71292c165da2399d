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
mod validate;

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
/// 4: the challenge says the user's language (`lang`); `call` (the code by
/// voice) and `can_call` in the challenge. Purely additive, so 4 and 3
/// talk: the daemon answers a client's hello with the lower of their
/// versions and keeps protocol-4 fields from a protocol-3 client (a module
/// of protocol 3 is still loaded in a running sshd during an upgrade); a
/// client that is refused asks once more with 3.
pub const PROTOCOL_VERSION: u32 = 4;
/// The oldest version still spoken, by the daemon and the client.
pub const MIN_PROTOCOL_VERSION: u32 = 3;
