//! The messages. Requests go from the module or the CLI to the daemon,
//! responses come back. Unknown fields are refused so that a peer speaking
//! another version fails loudly instead of being half-understood.

use crate::secret::Secret;
pub use crate::store::{HealthCheck, StoreHealth, TableCopy};
pub use crate::validate::{check_user, ValidationError};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// First frame of every connection.
    Hello { version: u32, client: String },
    /// Start a challenge for a login: the daemon decides, sends, and answers
    /// [`Response::Challenge`] or why not.
    Begin(BeginRequest),
    /// Check a code typed at the prompt for the challenge of this connection.
    Verify { code: Secret },
    /// Send a new code; the previous one stops working at once.
    Resend,
    /// Like `Resend`, but the new code is spoken in a phone call through
    /// the daemon's voice providers; offered when
    /// [`ChallengeInfo::can_call`] says so. Protocol 4.
    Call,
    /// Answer to [`Response::AskMobile`]: the number the user typed.
    Enroll { mobile: String },
    /// Admin / self-service: what the daemon knows about a user.
    Status { user: String },
    /// Admin: store a number for a user (not one listed in users.toml).
    SetMobile { user: String, mobile: String },
    /// Admin: forget everything stored about a user.
    RemoveUser { user: String },
    /// Admin: lift a lockout and clear the failure count.
    Unlock { user: String },
    /// Admin or the user: replace the user's backup codes with a new set.
    /// A caller other than root first gets [`Response::StepUp`] and repeats
    /// the request with the SMS code in `code` (see [`StepUpInfo`]).
    GenerateBackupCodes {
        user: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<Secret>,
    },
    /// The user (or an admin) opts out of / back into SMS codes where the
    /// policy is not mandatory. Opting out as a caller other than root
    /// takes the same step-up as `GenerateBackupCodes`; opting in never does.
    SetOptOut {
        user: String,
        opted_out: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<Secret>,
    },
    /// Admin: send a test message to a user through the provider chain.
    TestSms { user: String },
    /// Admin (root): copy the SQLite store file at `path` (absolute) into
    /// the daemon's PostgreSQL store, to move a host into a fleet without
    /// re-enrolling anyone. Running it again changes nothing.
    ImportStore { path: String },
    /// Whether the daemon's store answers, and how fast. Root also gets
    /// the deeper checks (schema version, write access).
    StoreCheck,
}

/// Who is logging in where. The daemon trusts these only as far as the
/// peer's credentials allow (root callers may name any user).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BeginRequest {
    pub user: String,
    pub service: String,
    #[serde(default)]
    pub rhost: Option<String>,
    #[serde(default)]
    pub tty: Option<String>,
    /// The command a sudo step-up is for, when the caller knows it.
    #[serde(default)]
    pub command: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Response {
    Hello {
        version: u32,
        server: String,
    },
    /// A code was sent (or, when `sms_sent` is false, only a backup code
    /// can be used); prompt for it.
    Challenge(ChallengeInfo),
    /// The code was right. The challenge is spent.
    Verified {
        method: VerifyMethod,
        /// Set when a backup code was used: how many remain.
        backup_codes_left: Option<u32>,
    },
    /// Policy says this login needs no code (exempt, trusted network,
    /// grace period, opted out, no number with `no_mobile = "skip"`, or the
    /// service is not enabled). The module returns PAM_IGNORE, never
    /// PAM_SUCCESS, so a stack cannot be skipped by accident.
    Skip {
        reason: SkipReason,
    },
    /// Too many wrong codes for this user across all sessions.
    Locked {
        retry_after_secs: u64,
    },
    /// A send budget or the country allowlist refused the SMS.
    SendRefused {
        reason: String,
        retry_after_secs: Option<u64>,
    },
    /// The user has no number and policy lets them enrol one: prompt for it
    /// and answer with [`Request::Enroll`].
    AskMobile,
    /// The number given to `Enroll` was refused; ask again.
    InvalidMobile {
        reason: String,
    },
    /// Answer to `Status`.
    Status(UserStatus),
    /// A self-service change that weakens the account needs a fresh SMS
    /// code: one was sent; send the same request again with it.
    StepUp(StepUpInfo),
    /// Answer to `GenerateBackupCodes`: shown once, never stored in clear.
    BackupCodes {
        codes: Vec<Secret>,
    },
    /// An admin request was carried out.
    Done {
        message: String,
    },
    /// Answer to `TestSms`: which provider took the message.
    TestSent {
        provider: String,
        detail: String,
    },
    /// The code was wrong; `attempts_left` more tries on this code.
    Wrong {
        attempts_left: u32,
    },
    /// The code's time is up. `can_resend` says whether `Resend` may help.
    Expired {
        can_resend: bool,
    },
    /// No tries left on this challenge.
    TriesExhausted,
    /// Resend refused (limit reached or disabled).
    ResendRefused {
        reason: String,
    },
    /// The user has no mobile number and policy denies such users.
    NoMobile,
    /// Every provider failed to send. Details are in the daemon's log only.
    SendFailed,
    /// Answer to `ImportStore`: per table, rows in the file and rows the
    /// copy added or changed (all zero on a second run).
    StoreImported {
        tables: Vec<TableCopy>,
    },
    /// Answer to `StoreCheck`.
    StoreHealth(StoreHealth),
    /// The request cannot be served; `message` is safe to show a user.
    Error {
        kind: ErrorKind,
        message: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerifyMethod {
    Sms,
    BackupCode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    ServiceNotEnabled,
    ExemptUser,
    ExemptGroup,
    TrustedNetwork,
    GracePeriod,
    OptedOut,
    NoMobile,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::ServiceNotEnabled => "service-not-enabled",
            SkipReason::ExemptUser => "exempt-user",
            SkipReason::ExemptGroup => "exempt-group",
            SkipReason::TrustedNetwork => "trusted-network",
            SkipReason::GracePeriod => "grace-period",
            SkipReason::OptedOut => "opted-out",
            SkipReason::NoMobile => "no-mobile",
        }
    }
}

/// What `smsotpctl status` shows. Never a full number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserStatus {
    pub user: String,
    /// Masked, e.g. `*******4567`; `None` when no number is known.
    pub mobile: Option<String>,
    /// `users.toml`, `enrolled`, `directory`, `directory unreachable` or `none`.
    pub mobile_source: String,
    pub locked: bool,
    pub locked_for_secs: Option<u64>,
    pub recent_failures: u32,
    pub lockouts: u32,
    pub backup_codes_left: u32,
    pub opted_out: bool,
    /// Where the daemon keeps this state. `unknown` from a daemon older
    /// than this field.
    #[serde(default)]
    pub store: StoreKind,
}

/// The daemon's state backend, as `smsotpctl status` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// This host's SQLite file.
    Sqlite,
    /// A PostgreSQL database shared by a fleet.
    Postgres,
    #[default]
    #[serde(other)]
    Unknown,
}

impl StoreKind {
    pub fn name(self) -> &'static str {
        match self {
            StoreKind::Sqlite => "sqlite",
            StoreKind::Postgres => "postgres",
            StoreKind::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChallengeInfo {
    /// The destination with all but the last digits hidden, e.g. `********7890`.
    #[serde(with = "masked")]
    pub masked_mobile: MaskedMobile,
    pub expires_in_secs: u64,
    pub resends_left: u32,
    pub attempts_left: u32,
    pub code_length: u8,
    pub alphabet: CodeAlphabet,
    /// False when no SMS went out (provider down, budget refused) and only
    /// a backup code can complete the login; `notice` says why.
    pub sms_sent: bool,
    /// Whether a backup code is accepted at this prompt.
    pub backup_allowed: bool,
    /// Safe to show the user.
    pub notice: Option<String>,
    /// False: the admin asked not to tell users why a code failed
    /// (`show_failure_reason = false`); the module then says only
    /// "Authentication failed."
    pub show_reasons: bool,
    /// The user's language (a BCP 47 tag such as `de-AT`) for the module's
    /// prompts and messages. Protocol 4; absent from older daemons and
    /// never sent to clients of protocol 3, whose strict parsing would
    /// refuse the field ([`Response::for_version`]). An unknown or absent
    /// language means English.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    /// A voice provider is configured: the user may ask for the code by
    /// phone call ([`Request::Call`]), counted like a resend. Protocol 4;
    /// left out when false, so a protocol 3 module never sees it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub can_call: bool,
}

/// A masked number is short and printable; keeping it in a fixed buffer
/// makes `ChallengeInfo` small and its size obvious.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct MaskedMobile {
    len: u8,
    buf: [u8; 24],
}

impl MaskedMobile {
    /// Accepts up to 24 bytes of `*`, `+` and digits.
    pub fn new(s: &str) -> Option<Self> {
        if s.is_empty()
            || s.len() > 24
            || !s
                .bytes()
                .all(|b| b == b'*' || b == b'+' || b.is_ascii_digit())
        {
            return None;
        }
        let mut buf = [0u8; 24];
        buf[..s.len()].copy_from_slice(s.as_bytes());
        Some(MaskedMobile {
            len: s.len() as u8,
            buf,
        })
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII is ever stored (checked in `new`).
        std::str::from_utf8(&self.buf[..self.len as usize]).unwrap_or("")
    }
}

impl std::fmt::Debug for MaskedMobile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

mod masked {
    use super::MaskedMobile;
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(m: &MaskedMobile, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(m.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<MaskedMobile, D::Error> {
        let s = String::deserialize(d)?;
        MaskedMobile::new(&s)
            .ok_or_else(|| D::Error::custom("masked_mobile is not a masked number"))
    }
}

/// What the CLI needs to ask for a step-up code. Every field is bounded by
/// its type; the code itself is only on the phone.
///
/// The pending code belongs to the caller's uid and the action, not to the
/// connection: the CLI may reconnect after the prompt. A wrong code is
/// answered with [`Response::Wrong`] (the same code may be tried again while
/// tries are left), then [`Response::TriesExhausted`]; a late one with
/// [`Response::Expired`]. Every guess is charged to the user's guess budget
/// like a login's, so a lockout ends step-ups too ([`Response::Locked`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepUpInfo {
    #[serde(with = "masked")]
    pub masked_mobile: MaskedMobile,
    pub expires_in_secs: u64,
    pub attempts_left: u32,
    pub code_length: u8,
    pub alphabet: CodeAlphabet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CodeAlphabet {
    Numeric,
    Alphanumeric,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The client's protocol version is not spoken by this daemon.
    UnsupportedVersion,
    /// The request broke a bound or arrived out of order.
    BadRequest,
    /// The peer may not act for that user.
    PermissionDenied,
    /// The daemon is at its connection limit.
    Busy,
    /// Something failed inside the daemon; see its log.
    Internal,
}

impl Response {
    /// This answer as a client that said hello with `version` can read it:
    /// fields newer than its protocol are dropped (protocol 3 has no
    /// `lang`). The daemon calls it on every answer it writes.
    pub fn for_version(mut self, version: u32) -> Response {
        if version < 4 {
            if let Response::Challenge(info) = &mut self {
                info.lang = None;
                info.can_call = false;
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn begin(user: &str) -> BeginRequest {
        BeginRequest {
            user: user.into(),
            service: "sshd".into(),
            rhost: Some("192.0.2.1".into()),
            tty: None,
            command: None,
        }
    }

    #[test]
    fn request_round_trips_through_json() {
        let req = Request::Begin(begin("alice"));
        let json = serde_json::to_string(&req).unwrap();
        assert!(json.contains("\"type\":\"begin\""), "{json}");
        let back: Request = serde_json::from_str(&json).unwrap();
        assert_eq!(back, req);
    }

    #[test]
    fn unknown_fields_are_refused() {
        // (Unit variants such as `resend` carry no fields to confuse.)
        let err = serde_json::from_str::<Request>(r#"{"type":"verify","code":"1","x":1}"#);
        assert!(err.is_err());
        let err = serde_json::from_str::<Request>(
            r#"{"type":"begin","user":"a","service":"s","evil":true}"#,
        );
        assert!(err.is_err());
    }

    #[test]
    fn validation_bounds_every_field() {
        assert!(begin("alice").validate().is_ok());
        assert_eq!(begin("").validate().unwrap_err().field, "user");
        assert_eq!(
            begin(&"a".repeat(257)).validate().unwrap_err().problem,
            "too long"
        );
        assert_eq!(
            begin("al\nice").validate().unwrap_err().problem,
            "contains control characters"
        );
        assert!(begin("../etc").validate().is_err());
        assert!(begin("-rf").validate().is_err());
        let mut b = begin("alice");
        b.rhost = Some("x".repeat(300));
        assert_eq!(b.validate().unwrap_err().field, "rhost");
        let long_code = Request::Verify {
            code: Secret::new("1".repeat(65)),
        };
        assert!(long_code.validate().is_err());
    }

    #[test]
    fn masked_mobile_accepts_only_masks() {
        assert_eq!(
            MaskedMobile::new("********7890").unwrap().as_str(),
            "********7890"
        );
        assert!(MaskedMobile::new("").is_none());
        assert!(MaskedMobile::new("abc").is_none());
        assert!(MaskedMobile::new(&"*".repeat(25)).is_none());
        let json = r#"{"type":"challenge","masked_mobile":"x<script>","expires_in_secs":1,"resends_left":0,"attempts_left":1,"code_length":6,"alphabet":"numeric","sms_sent":true,"backup_allowed":false,"notice":null,"show_reasons":true}"#;
        assert!(serde_json::from_str::<Response>(json).is_err());
    }

    #[test]
    fn step_up_requests_bound_the_code_and_old_forms_still_decode() {
        // Protocol 2's forms (no `code`) decode as "no code yet", and a
        // request without a code goes out exactly as before.
        let old = r#"{"type":"generate_backup_codes","user":"bob"}"#;
        let req: Request = serde_json::from_str(old).unwrap();
        assert_eq!(
            req,
            Request::GenerateBackupCodes {
                user: "bob".into(),
                code: None
            }
        );
        assert_eq!(serde_json::to_string(&req).unwrap(), old);
        let old = r#"{"type":"set_opt_out","user":"bob","opted_out":true}"#;
        assert!(serde_json::from_str::<Request>(old).is_ok());
        let with = Request::SetOptOut {
            user: "bob".into(),
            opted_out: true,
            code: Some(Secret::new("424242")),
        };
        assert!(with.validate().is_ok());
        assert!(!format!("{with:?}").contains("424242"));
        let long = Request::GenerateBackupCodes {
            user: "bob".into(),
            code: Some(Secret::new("1".repeat(65))),
        };
        assert_eq!(long.validate().unwrap_err().field, "code");
    }

    #[test]
    fn step_up_answer_round_trips_and_refuses_a_bad_mask() {
        let resp = Response::StepUp(StepUpInfo {
            masked_mobile: MaskedMobile::new("********4567").unwrap(),
            expires_in_secs: 300,
            attempts_left: 3,
            code_length: 6,
            alphabet: CodeAlphabet::Numeric,
        });
        let json = serde_json::to_string(&resp).unwrap();
        assert!(json.starts_with(r#"{"type":"step_up","#), "{json}");
        assert_eq!(serde_json::from_str::<Response>(&json).unwrap(), resp);
        let bad = json.replace("********4567", "+15551234567x");
        assert!(serde_json::from_str::<Response>(&bad).is_err());
    }

    #[test]
    fn fuzz_seeds_still_decode() {
        // The admin seed: hello, set_opt_out (protocol 2 form), enroll.
        let seed: &[u8] = include_bytes!("../../fuzz/seeds/frame_decode/admin");
        let mut cur = std::io::Cursor::new(seed);
        let mut n = 0;
        while let Ok(req) = crate::frame::read_frame::<_, Request>(&mut cur) {
            assert!(req.validate().is_ok(), "{req:?}");
            n += 1;
        }
        assert_eq!(n, 3);
    }

    #[test]
    fn debug_of_verify_hides_the_code() {
        let req = Request::Verify {
            code: Secret::new("424242"),
        };
        assert!(!format!("{req:?}").contains("424242"));
    }
}
