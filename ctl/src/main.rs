//! smsotpctl: talks to smsotpd like the PAM module does, for administrators
//! and scripts. Exit codes: 0 ok, 1 the check failed or the daemon refused,
//! 2 usage or config error, 3 daemon unreachable, 4 daemon busy.

use clap::{CommandFactory, Parser, Subcommand};
use smsotp_proto::Client;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

mod commands;
mod doctor;

#[derive(Parser)]
#[command(version, about = "Control and inspect smsotpd")]
struct Cli {
    /// Daemon socket (default: for root the config's `root_socket` when it
    /// exists, else its `socket`).
    #[arg(long, global = true)]
    socket: Option<PathBuf>,
    /// Daemon config file.
    #[arg(long, global = true, default_value = smsotp_config::DEFAULT_CONFIG)]
    config: PathBuf,
    /// Print machine-readable JSON.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check that the daemon answers, and print its version.
    Ping {
        /// Seconds to wait for an answer.
        #[arg(long, default_value_t = 5)]
        timeout: u64,
    },
    /// Validate the daemon config and users file without starting anything.
    CheckConfig,
    /// status, set-mobile, remove, unlock, backup-codes, opt-out, opt-in,
    /// test-sms (see commands/).
    #[command(flatten)]
    Admin(commands::Admin),
    /// Check the module, the PAM stacks, sshd, the config and the daemon;
    /// print each problem with its fix (exit 1 when there is an error).
    Doctor(doctor::DoctorArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Ping { timeout } => ping(&cli.socket, &cli.config, timeout, cli.json),
        Command::CheckConfig => check_config(&cli.config, cli.json),
        Command::Admin(ref cmd) => {
            commands::run(cmd, &socket_path(&cli.socket, &cli.config), cli.json)
        }
        Command::Doctor(ref args) => {
            doctor::run(args, &cli.config, cli.socket.as_deref(), cli.json)
        }
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "smsotpctl",
                &mut std::io::stdout(),
            );
            ExitCode::SUCCESS
        }
    }
}

/// `--socket`, else the socket the PAM module would pick: for root the
/// root-only one (no local user can flood it or take its slots) unless it
/// does not exist (a daemon older than this tool), else the public one.
/// Non-root callers usually cannot read the config and get the defaults.
fn socket_path(explicit: &Option<PathBuf>, config: &std::path::Path) -> PathBuf {
    if let Some(s) = explicit {
        return s.clone();
    }
    let (root, public) = match smsotp_config::load(config) {
        Ok(c) => (c.root_socket, c.socket),
        Err(_) => (
            PathBuf::from(smsotp_config::DEFAULT_ROOT_SOCKET),
            PathBuf::from(smsotp_config::DEFAULT_SOCKET),
        ),
    };
    if smsotp_proto::sockets::euid() == 0 && root.exists() {
        root
    } else {
        public
    }
}

fn ping(socket: &Option<PathBuf>, config: &std::path::Path, timeout: u64, json: bool) -> ExitCode {
    let path = socket_path(socket, config);
    let started = std::time::Instant::now();
    match Client::connect(
        &path,
        Duration::from_secs(timeout.clamp(1, 120)),
        "smsotpctl",
    ) {
        Ok(client) => {
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            if json {
                println!(
                    "{}",
                    serde_json::json!({"ok": true, "socket": path, "server": client.server(), "ms": ms})
                );
            } else {
                println!(
                    "{}: {} answered in {ms:.1} ms",
                    path.display(),
                    client.server()
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({"ok": false, "socket": path, "error": e.to_string()})
                );
            } else {
                eprintln!("smsotpctl: {e}");
            }
            ExitCode::from(commands::output::Failure::from_client(&e).exit)
        }
    }
}

/// What `smsotpd --check-config` would refuse, short of building the
/// providers: the config's syntax and rules, and whether the daemon would
/// believe the config, the users file and the store (their owners and
/// modes, and every directory on the way).
fn check_config(config: &std::path::Path, json: bool) -> ExitCode {
    use smsotp_config::perms;
    let result = perms::check(config, perms::Role::Config)
        .map_err(Refused::Perms)
        .and_then(|()| smsotp_config::load(config).map_err(Refused::Config))
        .and_then(|c| {
            perms::check_named_files(&c).map_err(Refused::Perms)?;
            let users = smsotp_config::Users::load(&c.users_file).map_err(Refused::Config)?;
            Ok((c, users))
        });
    match result {
        Ok((c, users)) => {
            let providers: Vec<&str> = c.providers.iter().map(|p| p.name()).collect();
            if json {
                println!(
                    "{}",
                    serde_json::json!({"ok": true, "config": config, "users": users.len(), "providers": providers})
                );
            } else {
                println!(
                    "{}: OK ({} users, providers: {})",
                    config.display(),
                    users.len(),
                    providers.join(", ")
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            if json {
                println!("{}", e.json());
            } else {
                eprintln!("smsotpctl: {e}");
            }
            ExitCode::from(2)
        }
    }
}

/// Why `check-config` refuses a configuration.
enum Refused {
    Config(smsotp_config::ConfigError),
    Perms(smsotp_config::perms::PermError),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Config(e) => e.fmt(f),
            Refused::Perms(e) => e.fmt(f),
        }
    }
}

impl Refused {
    fn json(&self) -> serde_json::Value {
        match self {
            Refused::Config(e) => serde_json::json!({
                "ok": false, "file": e.file, "line": e.line, "key": e.key, "error": e.message
            }),
            Refused::Perms(e) => serde_json::json!({
                "ok": false, "file": e.file, "line": null, "key": null, "error": e.to_string()
            }),
        }
    }
}
