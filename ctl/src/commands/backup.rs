//! `smsotpctl backup-codes generate [USER]` and `backup-codes count [USER]`.
//!
//! `generate` prints the codes once, one per line on stdout, with the
//! header on stderr, so `smsotpctl backup-codes generate > codes.txt`
//! captures only the codes. For anyone but root it first asks for the
//! code the daemon sends to the phone (see [`stepup`]).

use super::output::{self, Failure, Reply, DEFAULT_TIMEOUT_SECS};
use super::{stepup, ConnArgs, Ctx};
use clap::{Args, Subcommand};
use serde::Serialize;
use smsotp_proto::{Request, Secret};

#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum BackupCommand {
    /// Replace the backup codes with a new set and print it once
    /// (codes on stdout, the header on stderr). The old codes stop working.
    /// Anyone but root must confirm with a code sent to their phone (read
    /// from the terminal, or one line from stdin when it is not one).
    Generate(UserArgs),
    /// Print how many unused backup codes are left.
    Count(UserArgs),
}

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct UserArgs {
    /// Login name (default: you).
    pub user: Option<String>,
    #[command(flatten)]
    pub conn: ConnArgs,
}

pub fn run(cmd: &BackupCommand, ctx: &Ctx) -> Result<(), Failure> {
    match cmd {
        BackupCommand::Generate(a) => generate(a, ctx),
        BackupCommand::Count(a) => count(a, ctx),
    }
}

fn generate(args: &UserArgs, ctx: &Ctx) -> Result<(), Failure> {
    let user = super::user_or_self(&args.user)?;
    let reply = stepup::call(
        ctx.socket,
        output::timeout(&args.conn, DEFAULT_TIMEOUT_SECS),
        |code| Request::GenerateBackupCodes {
            user: user.clone(),
            code,
        },
    )?;
    let codes = match reply {
        Reply::BackupCodes { codes } => codes,
        Reply::Status(_) => return Err(Failure::unexpected("status")),
        Reply::Done { .. } => return Err(Failure::unexpected("done")),
        Reply::TestSent { .. } => return Err(Failure::unexpected("test_sent")),
    };
    if ctx.json {
        output::print_json(&CodesJson {
            user: &user,
            codes: &codes,
        })
    } else {
        eprint!("{}", header(&user, codes.len()));
        output::print_human(&codes_text(&codes))
    }
}

fn count(args: &UserArgs, ctx: &Ctx) -> Result<(), Failure> {
    let user = super::user_or_self(&args.user)?;
    let status = output::call(
        ctx.socket,
        output::timeout(&args.conn, DEFAULT_TIMEOUT_SECS),
        &Request::Status { user },
    )?
    .into_status()?;
    if ctx.json {
        output::print_json(&count_json(&status.user, status.backup_codes_left))
    } else {
        output::print_human(&format!("{}\n", status.backup_codes_left))
    }
}

/// `{"user": ..., "codes": [...]}`; codes serialize as plain strings.
#[derive(Serialize)]
pub struct CodesJson<'a> {
    pub user: &'a str,
    pub codes: &'a [Secret],
}

pub fn header(user: &str, n: usize) -> String {
    format!(
        "{n} new backup codes for {}. Each works once; they replace any earlier \
         set, which no longer works. Store them safely: they are not shown again.\n",
        output::clean(user)
    )
}

/// One code per line, nothing else (a code never contains a newline that
/// could forge another one: control characters are cleaned).
pub fn codes_text(codes: &[Secret]) -> String {
    codes
        .iter()
        .map(|c| format!("{}\n", output::clean(c.expose())))
        .collect()
}

pub fn count_json(user: &str, left: u32) -> serde_json::Value {
    serde_json::json!({"user": user, "backup_codes_left": left})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::testing::parse;
    use crate::commands::Admin;

    fn backup(cmd: Admin) -> BackupCommand {
        match cmd {
            Admin::BackupCodes(b) => b,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parses_generate_and_count() {
        assert_eq!(
            backup(parse(&["backup-codes", "generate"]).unwrap().0),
            BackupCommand::Generate(UserArgs {
                user: None,
                conn: ConnArgs::default()
            })
        );
        assert_eq!(
            backup(parse(&["backup-codes", "generate", "bob"]).unwrap().0),
            BackupCommand::Generate(UserArgs {
                user: Some("bob".into()),
                conn: ConnArgs::default()
            })
        );
        assert_eq!(
            backup(
                parse(&["backup-codes", "count", "bob", "--timeout", "5"])
                    .unwrap()
                    .0
            ),
            BackupCommand::Count(UserArgs {
                user: Some("bob".into()),
                conn: ConnArgs { timeout: Some(5) }
            })
        );
        assert!(parse(&["backup-codes"]).is_err());
        assert!(parse(&["backup-codes", "list"]).is_err());
    }

    fn codes() -> Vec<Secret> {
        vec![Secret::new("a1b2-c3d4"), Secret::new("e5f6-a7b8")]
    }

    #[test]
    fn human_codes_are_one_per_line_and_nothing_else() {
        assert_eq!(codes_text(&codes()), "a1b2-c3d4\ne5f6-a7b8\n");
        assert_eq!(codes_text(&[Secret::new("x\ny")]), "x?y\n");
        let h = header("alice", 2);
        assert!(h.starts_with("2 new backup codes for alice."), "{h}");
        assert!(h.contains("replace any earlier set"), "{h}");
        assert!(!h.contains("a1b2"));
    }

    #[test]
    fn json_codes_object() {
        let c = codes();
        let json = serde_json::to_value(output::success(&CodesJson {
            user: "alice",
            codes: &c,
        }))
        .unwrap();
        assert_eq!(
            json,
            serde_json::json!({"ok": true, "user": "alice", "codes": ["a1b2-c3d4", "e5f6-a7b8"]})
        );
    }

    #[test]
    fn count_outputs() {
        assert_eq!(
            serde_json::to_value(output::success(&count_json("alice", 7))).unwrap(),
            serde_json::json!({"ok": true, "user": "alice", "backup_codes_left": 7})
        );
    }
}
