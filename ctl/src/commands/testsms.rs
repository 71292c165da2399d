//! `smsotpctl test-sms USER`: sends a test message through the provider
//! chain and prints which provider took it and what it said.

use super::output::{self, clean, Failure, Reply};
use super::{ConnArgs, Ctx};
use clap::Args;
use smsotp_proto::Request;

/// Providers may retry and fail over; give them longer than other calls.
pub const TEST_SMS_TIMEOUT_SECS: u64 = 30;

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct TestSmsArgs {
    /// Login name whose number receives the test message.
    pub user: String,
    #[command(flatten)]
    pub conn: ConnArgs,
}

pub fn test_sms(args: &TestSmsArgs, ctx: &Ctx) -> Result<(), Failure> {
    let reply = output::call(
        ctx.socket,
        output::timeout(&args.conn, TEST_SMS_TIMEOUT_SECS),
        &Request::TestSms {
            user: args.user.clone(),
        },
    )?;
    let (provider, detail) = match reply {
        Reply::TestSent { provider, detail } => (provider, detail),
        Reply::Status(_) => return Err(Failure::unexpected("status")),
        Reply::BackupCodes { .. } => return Err(Failure::unexpected("backup_codes")),
        Reply::Done { .. } => return Err(Failure::unexpected("done")),
    };
    if ctx.json {
        output::print_json(&sent_json(&args.user, &provider, &detail))
    } else {
        output::print_human(&sent_text(&args.user, &provider, &detail))
    }
}

pub fn sent_text(user: &str, provider: &str, detail: &str) -> String {
    let detail = clean(detail.trim());
    if detail.is_empty() {
        format!(
            "{}: test message sent via {}\n",
            clean(user),
            clean(provider)
        )
    } else {
        format!(
            "{}: test message sent via {}: {detail}\n",
            clean(user),
            clean(provider)
        )
    }
}

pub fn sent_json(user: &str, provider: &str, detail: &str) -> serde_json::Value {
    serde_json::json!({"user": user, "provider": provider, "detail": detail})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::testing::parse;
    use crate::commands::Admin;

    #[test]
    fn parses_user_and_default_timeout() {
        match parse(&["test-sms", "alice"]).unwrap().0 {
            Admin::TestSms(a) => {
                assert_eq!(a.user, "alice");
                assert_eq!(
                    output::timeout(&a.conn, TEST_SMS_TIMEOUT_SECS),
                    std::time::Duration::from_secs(30)
                );
            }
            other => panic!("{other:?}"),
        }
        match parse(&["test-sms", "alice", "--timeout", "90"]).unwrap().0 {
            Admin::TestSms(a) => assert_eq!(
                output::timeout(&a.conn, TEST_SMS_TIMEOUT_SECS),
                std::time::Duration::from_secs(90)
            ),
            other => panic!("{other:?}"),
        }
        assert!(parse(&["test-sms"]).is_err());
    }

    #[test]
    fn human_and_json() {
        assert_eq!(
            sent_text("alice", "http", "202 Accepted"),
            "alice: test message sent via http: 202 Accepted\n"
        );
        assert_eq!(
            sent_text("alice", "outbox", ""),
            "alice: test message sent via outbox\n"
        );
        // Provider text reaches the terminal only cleaned.
        assert_eq!(
            sent_text("alice", "http", "ok\x1b[31m"),
            "alice: test message sent via http: ok?[31m\n"
        );
        assert_eq!(
            serde_json::to_value(output::success(&sent_json("alice", "http", "202 Accepted")))
                .unwrap(),
            serde_json::json!({"ok": true, "user": "alice", "provider": "http", "detail": "202 Accepted"})
        );
    }
}
