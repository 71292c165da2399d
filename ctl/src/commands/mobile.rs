//! `smsotpctl set-mobile USER NUMBER`.
//!
//! The daemon validates the number (E.164, country allowlist) and answers
//! with a masked form; the full number is never printed back. `-` reads it
//! from stdin, which keeps it out of `ps` and shell history.

use super::output::{self, Failure, DEFAULT_TIMEOUT_SECS};
use super::{ConnArgs, Ctx};
use clap::Args;
use smsotp_proto::Request;
use std::io::BufRead;

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct SetMobileArgs {
    /// Login name.
    pub user: String,
    /// E.164 number, e.g. +4915112345678; `-` reads one line from stdin.
    pub number: String,
    #[command(flatten)]
    pub conn: ConnArgs,
}

pub fn set_mobile(args: &SetMobileArgs, ctx: &Ctx) -> Result<(), Failure> {
    let mobile = if args.number == "-" {
        read_number(&mut std::io::stdin().lock())?
    } else {
        args.number.trim().to_string()
    };
    let message = output::call(
        ctx.socket,
        output::timeout(&args.conn, DEFAULT_TIMEOUT_SECS),
        &Request::SetMobile {
            user: args.user.clone(),
            mobile,
        },
    )?
    .into_done()?;
    output::print_done(
        ctx,
        &args.user,
        "set-mobile",
        &message,
        &format!("{}: number set", args.user),
    )
}

/// The first line of `input`, trimmed; empty is a usage error.
pub fn read_number(input: &mut impl BufRead) -> Result<String, Failure> {
    let mut line = String::new();
    input
        .read_line(&mut line)
        .map_err(|e| Failure::usage(format!("cannot read the number from stdin: {e}")))?;
    let number = line.trim();
    if number.is_empty() {
        return Err(Failure::usage("no number on stdin"));
    }
    Ok(number.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::output::EXIT_USAGE;
    use crate::commands::testing::parse;
    use crate::commands::Admin;

    fn args(cmd: Admin) -> SetMobileArgs {
        match cmd {
            Admin::SetMobile(a) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parses_user_and_number() {
        let a = args(parse(&["set-mobile", "alice", "+4915112345678"]).unwrap().0);
        assert_eq!(
            (a.user.as_str(), a.number.as_str()),
            ("alice", "+4915112345678")
        );
        let a = args(parse(&["set-mobile", "alice", "-"]).unwrap().0);
        assert_eq!(a.number, "-");
        assert!(parse(&["set-mobile", "alice"]).is_err());
        assert!(parse(&["set-mobile"]).is_err());
        assert!(parse(&["set-mobile", "a", "1", "2"]).is_err());
        // Global flags may come anywhere and are not taken for the number.
        let (cmd, json) = parse(&["set-mobile", "alice", "--json", "+4915112345678"]).unwrap();
        assert!(json);
        assert_eq!(args(cmd).number, "+4915112345678");
    }

    #[test]
    fn number_from_stdin_is_one_trimmed_line() {
        let mut input = std::io::Cursor::new(b"  +4915112345678 \nrest\n".to_vec());
        assert_eq!(read_number(&mut input).unwrap(), "+4915112345678");
        let f = read_number(&mut std::io::Cursor::new(b"\n".to_vec())).unwrap_err();
        assert_eq!(f.exit, EXIT_USAGE);
    }

    #[test]
    fn output_never_echoes_the_full_number() {
        // What is printed comes from the daemon's message (masked there) and
        // the user name; the typed number is not an input of the printers.
        let text = output::done_text("alice: number set to ********5678", "x");
        assert!(!text.contains("+4915112345678"));
        let json = output::done_json("alice", "set-mobile", "alice: number set to ********5678");
        assert!(!json.to_string().contains("4915112345678"));
        assert_eq!(json["action"], "set-mobile");
    }
}
