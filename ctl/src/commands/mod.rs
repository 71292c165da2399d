//! The admin and self-service commands: each asks the daemon one question
//! over its socket and prints the answer for a person (default) or a
//! script (`--json`: exactly one JSON object on stdout).
//!
//! The daemon decides who may do what (from SO_PEERCRED); this CLI never
//! second-guesses it, it only reports the refusal. Exit codes are the
//! constants in [`output`].

use clap::{Args, Subcommand};
use std::path::Path;
use std::process::ExitCode;

pub mod backup;
mod hidden_input;
pub mod mobile;
pub mod optout;
pub mod output;
pub mod remove;
pub mod status;
pub mod stepup;
pub mod store;
pub mod testsms;

/// Subcommands flattened into `smsotpctl`'s own list.
#[derive(Subcommand, Debug, Clone)]
pub enum Admin {
    /// Show what the daemon knows about a user (default: you).
    Status(status::StatusArgs),
    /// Store a mobile number for a user (NUMBER `-` reads it from stdin).
    SetMobile(mobile::SetMobileArgs),
    /// Forget everything stored about a user (number, backup codes,
    /// lockout and opt-out); asks first unless --yes.
    Remove(remove::RemoveArgs),
    /// Lift a user's lockout and clear the failure count.
    Unlock(status::UnlockArgs),
    /// Generate or count backup codes.
    #[command(subcommand)]
    BackupCodes(backup::BackupCommand),
    /// Stop asking you for SMS codes, where the policy allows it (anyone
    /// but root confirms with a code sent to their phone).
    OptOut(optout::OptArgs),
    /// Ask you for SMS codes again.
    OptIn(optout::OptArgs),
    /// Send a test message to a user through the provider chain.
    TestSms(testsms::TestSmsArgs),
    /// The state store: copy a SQLite file into PostgreSQL, or check it.
    #[command(subcommand)]
    Store(store::StoreCommand),
}

/// How to reach the daemon; shared by every command that talks to it.
#[derive(Args, Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnArgs {
    /// Seconds to wait for the daemon's answer (default 10; test-sms 30).
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=600))]
    pub timeout: Option<u64>,
}

/// What every command needs besides its own arguments.
pub struct Ctx<'a> {
    pub socket: &'a Path,
    pub json: bool,
}

pub fn run(cmd: &Admin, socket: &Path, json: bool) -> ExitCode {
    let ctx = Ctx { socket, json };
    let result = match cmd {
        Admin::Status(a) => status::status(a, &ctx),
        Admin::SetMobile(a) => mobile::set_mobile(a, &ctx),
        Admin::Remove(a) => remove::remove(a, &ctx),
        Admin::Unlock(a) => status::unlock(a, &ctx),
        Admin::BackupCodes(c) => backup::run(c, &ctx),
        Admin::OptOut(a) => optout::set(a, true, &ctx),
        Admin::OptIn(a) => optout::set(a, false, &ctx),
        Admin::TestSms(a) => testsms::test_sms(a, &ctx),
        Admin::Store(c) => store::run(c, &ctx),
    };
    match result {
        Ok(()) => ExitCode::from(output::EXIT_OK),
        Err(failure) => failure.report(json),
    }
}

/// The login name of the real uid, from the passwd database (not `$USER`).
pub fn calling_user() -> Result<String, output::Failure> {
    let uid = nix::unistd::getuid();
    match nix::unistd::User::from_uid(uid) {
        Ok(Some(user)) => Ok(user.name),
        Ok(None) => Err(output::Failure::usage(format!(
            "uid {uid} has no passwd entry; name the user explicitly"
        ))),
        Err(e) => Err(output::Failure::usage(format!(
            "cannot look up uid {uid}: {e}; name the user explicitly"
        ))),
    }
}

/// `Some(name)` as given, or the caller's own login name.
pub fn user_or_self(user: &Option<String>) -> Result<String, output::Failure> {
    match user {
        Some(u) => Ok(u.clone()),
        None => calling_user(),
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use clap::Parser;

    /// Parses a full `smsotpctl` command line and returns the admin
    /// subcommand, or the clap error for a bad one.
    pub fn parse(args: &[&str]) -> Result<(super::Admin, bool), clap::Error> {
        let cli =
            crate::Cli::try_parse_from(std::iter::once("smsotpctl").chain(args.iter().copied()))?;
        match cli.command {
            crate::Command::Admin(a) => Ok((a, cli.json)),
            _ => panic!("not an admin command: {args:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calling_user_is_the_passwd_name_of_the_real_uid() {
        let name = calling_user().expect("the test runs as a user with a passwd entry");
        let uid = nix::unistd::getuid();
        let expected = nix::unistd::User::from_uid(uid).unwrap().unwrap().name;
        assert_eq!(name, expected);
        assert_eq!(user_or_self(&None).unwrap(), expected);
        assert_eq!(user_or_self(&Some("bob".into())).unwrap(), "bob");
    }

    #[test]
    fn timeout_is_bounded() {
        assert!(testing::parse(&["status", "--timeout", "0"]).is_err());
        assert!(testing::parse(&["status", "--timeout", "601"]).is_err());
        assert!(testing::parse(&["status", "--timeout", "x"]).is_err());
        let (cmd, _) = testing::parse(&["status", "--timeout", "3"]).unwrap();
        match cmd {
            Admin::Status(a) => assert_eq!(a.conn.timeout, Some(3)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn json_is_global() {
        let (_, json) = testing::parse(&["unlock", "alice", "--json"]).unwrap();
        assert!(json);
        let (_, json) = testing::parse(&["--json", "backup-codes", "count"]).unwrap();
        assert!(json);
        let (_, json) = testing::parse(&["backup-codes", "generate", "bob"]).unwrap();
        assert!(!json);
    }

    #[test]
    fn usage_errors_are_exit_code_2() {
        // clap's own exit code for usage errors matches ours.
        let err = testing::parse(&["set-mobile", "alice"]).unwrap_err();
        assert_eq!(err.exit_code(), i32::from(output::EXIT_USAGE));
        let err = testing::parse(&["frobnicate"]).unwrap_err();
        assert_eq!(err.exit_code(), i32::from(output::EXIT_USAGE));
    }
}
