//! `smsotpctl remove USER [--yes]`: forgets everything the daemon stores
//! about a user. Asks on a terminal; refuses to guess when stdin is not one.

use super::output::{self, Failure, DEFAULT_TIMEOUT_SECS, EXIT_FAILED};
use super::{ConnArgs, Ctx};
use clap::Args;
use smsotp_proto::Request;
use std::io::{BufRead, IsTerminal, Write};

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct RemoveArgs {
    /// Login name.
    pub user: String,
    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(short = 'y', long)]
    pub yes: bool,
    #[command(flatten)]
    pub conn: ConnArgs,
}

/// What to do before sending the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Proceed,
    Ask,
    Refuse,
}

pub fn gate(yes: bool, stdin_is_tty: bool) -> Gate {
    match (yes, stdin_is_tty) {
        (true, _) => Gate::Proceed,
        (false, true) => Gate::Ask,
        (false, false) => Gate::Refuse,
    }
}

pub fn remove(args: &RemoveArgs, ctx: &Ctx) -> Result<(), Failure> {
    // Validate first, so a bad name is not confirmed and then refused.
    smsotp_proto::check_user(&args.user).map_err(|v| Failure::usage(format!("invalid {v}")))?;
    match gate(args.yes, std::io::stdin().is_terminal()) {
        Gate::Proceed => {}
        Gate::Refuse => {
            return Err(Failure::usage(format!(
                "not removing {} without confirmation: stdin is not a terminal; pass --yes",
                args.user
            )))
        }
        Gate::Ask => {
            let agreed = confirm(
                &args.user,
                &mut std::io::stdin().lock(),
                &mut std::io::stderr().lock(),
            )
            .map_err(|e| Failure::new(EXIT_FAILED, "io", format!("cannot ask: {e}")))?;
            if !agreed {
                return Err(Failure::new(
                    EXIT_FAILED,
                    "declined",
                    format!("{} not removed", args.user),
                ));
            }
        }
    }
    let message = output::call(
        ctx.socket,
        output::timeout(&args.conn, DEFAULT_TIMEOUT_SECS),
        &Request::RemoveUser {
            user: args.user.clone(),
        },
    )?
    .into_done()?;
    output::print_done(
        ctx,
        &args.user,
        "remove",
        &message,
        &format!("{}: removed", args.user),
    )
}

/// Prompts on `err` and reads the answer; only `y` or `yes` agree.
pub fn confirm(
    user: &str,
    input: &mut impl BufRead,
    err: &mut impl Write,
) -> std::io::Result<bool> {
    write!(
        err,
        "Remove everything stored for {user} (enrolled number, backup codes, \
         lockout and opt-out state)? [y/N] "
    )?;
    err.flush()?;
    let mut answer = String::new();
    input.read_line(&mut answer)?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::testing::parse;
    use crate::commands::Admin;

    fn args(cmd: Admin) -> RemoveArgs {
        match cmd {
            Admin::Remove(a) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parses_yes_long_and_short() {
        assert!(!args(parse(&["remove", "alice"]).unwrap().0).yes);
        assert!(args(parse(&["remove", "alice", "--yes"]).unwrap().0).yes);
        assert!(args(parse(&["remove", "-y", "alice"]).unwrap().0).yes);
        assert!(parse(&["remove"]).is_err());
    }

    #[test]
    fn confirmation_gate() {
        assert_eq!(gate(true, true), Gate::Proceed);
        assert_eq!(gate(true, false), Gate::Proceed);
        assert_eq!(gate(false, true), Gate::Ask);
        assert_eq!(gate(false, false), Gate::Refuse);
    }

    #[test]
    fn only_y_or_yes_confirms() {
        for (answer, expected) in [
            ("y\n", true),
            ("YES\n", true),
            (" yes \n", true),
            ("\n", false),
            ("n\n", false),
            ("yess\n", false),
            ("", false),
        ] {
            let mut prompt = Vec::new();
            let got = confirm(
                "alice",
                &mut std::io::Cursor::new(answer.as_bytes()),
                &mut prompt,
            )
            .unwrap();
            assert_eq!(got, expected, "{answer:?}");
            let prompt = String::from_utf8(prompt).unwrap();
            assert!(
                prompt.starts_with("Remove everything stored for alice "),
                "{prompt}"
            );
            assert!(prompt.ends_with("[y/N] "), "{prompt}");
        }
    }

    #[test]
    fn refuses_without_yes_when_not_a_terminal() {
        // `cargo test` runs with stdin not a terminal (or, if it is, this
        // test says nothing about the refusal and is skipped).
        if std::io::stdin().is_terminal() {
            return;
        }
        let a = args(parse(&["remove", "alice"]).unwrap().0);
        let ctx = Ctx {
            socket: std::path::Path::new("/nonexistent/smsotp.sock"),
            json: false,
        };
        let f = remove(&a, &ctx).unwrap_err();
        assert_eq!(f.exit, output::EXIT_USAGE);
        assert_eq!(
            f.message,
            "not removing alice without confirmation: stdin is not a terminal; pass --yes"
        );
        // With --yes it goes on to the (missing) daemon.
        let a = args(parse(&["remove", "--yes", "alice"]).unwrap().0);
        assert_eq!(remove(&a, &ctx).unwrap_err().exit, output::EXIT_UNREACHABLE);
    }
}
