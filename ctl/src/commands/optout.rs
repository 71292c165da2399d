//! `smsotpctl opt-out` / `opt-in`: for the calling user; `--user` names
//! another one, which the daemon allows root only.

use super::output::{self, Failure, DEFAULT_TIMEOUT_SECS};
use super::{stepup, ConnArgs, Ctx};
use clap::Args;
use smsotp_proto::Request;

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct OptArgs {
    /// Act for this user instead of you (root only; the daemon decides).
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    #[command(flatten)]
    pub conn: ConnArgs,
}

pub fn set(args: &OptArgs, opted_out: bool, ctx: &Ctx) -> Result<(), Failure> {
    let user = super::user_or_self(&args.user)?;
    // Opting out takes the SMS step-up for anyone but root; opting in is
    // sent once and never answered with one.
    let message = stepup::call(
        ctx.socket,
        output::timeout(&args.conn, DEFAULT_TIMEOUT_SECS),
        |code| Request::SetOptOut {
            user: user.clone(),
            opted_out,
            code,
        },
    )?
    .into_done()?;
    let (action, fallback) = action(&user, opted_out);
    if ctx.json {
        let mut object = output::done_json(&user, action, &message);
        object["opted_out"] = opted_out.into();
        output::print_json(&object)
    } else {
        output::print_human(&output::done_text(&message, &fallback))
    }
}

fn action(user: &str, opted_out: bool) -> (&'static str, String) {
    if opted_out {
        ("opt-out", format!("{user}: opted out of SMS codes"))
    } else {
        ("opt-in", format!("{user}: SMS codes required again"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::testing::parse;
    use crate::commands::Admin;

    #[test]
    fn parses_opt_out_and_in_with_optional_user() {
        match parse(&["opt-out"]).unwrap().0 {
            Admin::OptOut(a) => assert_eq!(a.user, None),
            other => panic!("{other:?}"),
        }
        match parse(&["opt-in", "--user", "bob"]).unwrap().0 {
            Admin::OptIn(a) => assert_eq!(a.user.as_deref(), Some("bob")),
            other => panic!("{other:?}"),
        }
        // The user is an option, not a positional.
        assert!(parse(&["opt-out", "bob"]).is_err());
    }

    #[test]
    fn actions_and_fallbacks() {
        assert_eq!(action("al", true).0, "opt-out");
        assert_eq!(action("al", false).1, "al: SMS codes required again");
    }
}
