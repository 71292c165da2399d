//! smsotpd: arguments, logging, signals and sd_notify around
//! `smsotpd::server::run`.

use clap::Parser;
use smsotpd::activation::{self, Activated};
use smsotpd::listener::{self, Access};
use smsotpd::server::{self, Limits, Listeners};
use smsotpd::state::{Runtime, State};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use tokio::signal::unix::{signal, SignalKind};
use tracing::{error, info, warn};

#[derive(Parser)]
#[command(version, about = "SMS one-time-password daemon for pam_smsotp")]
struct Args {
    /// Configuration file.
    #[arg(long, short, default_value = smsotp_config::DEFAULT_CONFIG)]
    config: PathBuf,
    /// Validate the configuration and the users file, then exit.
    #[arg(long)]
    check_config: bool,
    /// Connect to the [directory] (TLS, bind, a read of base_dn), print one
    /// JSON object per check, then exit (non-zero if any failed).
    #[arg(long)]
    check_directory: bool,
    /// With --check-directory: look up this user's number too (repeatable).
    #[arg(
        long = "directory-user",
        value_name = "NAME",
        requires = "check_directory"
    )]
    directory_users: Vec<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match Runtime::load(&args.config) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("smsotpd: {e}");
            return ExitCode::from(2);
        }
    };
    if args.check_config {
        println!(
            "{}: OK ({} users, providers: {})",
            args.config.display(),
            runtime.users.len(),
            runtime.chain.names().join(", ")
        );
        return ExitCode::SUCCESS;
    }
    if args.check_directory {
        return check_directory(&runtime, &args.directory_users);
    }
    // Before any thread exists: reading LISTEN_FDS unsets the variables.
    let activated = match activation::take(&runtime.config.socket, &runtime.config.root_socket) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("smsotpd: socket activation: {e}");
            return ExitCode::FAILURE;
        }
    };
    init_logging(runtime.config.log_level);
    let tokio = match async_runtime() {
        Ok(t) => t,
        Err(code) => return code,
    };
    tokio.block_on(serve(args.config, runtime, activated))
}

fn async_runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("smsotpd: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        })
}

fn check_directory(runtime: &Runtime, users: &[String]) -> ExitCode {
    let Some(dir) = &runtime.directory else {
        eprintln!("smsotpd: the configuration has no [directory] section");
        return ExitCode::from(2);
    };
    let tokio = match async_runtime() {
        Ok(t) => t,
        Err(code) => return code,
    };
    let (lines, ok) = tokio.block_on(smsotpd::directory::check::run(dir, users));
    for line in lines {
        println!("{line}");
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn init_logging(level: smsotp_config::LogLevel) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    // SMSOTPD_LOG (an EnvFilter directive) overrides the config for debugging.
    let filter = || {
        tracing_subscriber::EnvFilter::try_from_env("SMSOTPD_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level.as_str()))
    };
    // Under systemd, events go to the journal with their fields as journal
    // fields (SMSOTP_EVENT=locked, SMSOTP_USER=alice), so auditors can
    // `journalctl SMSOTP_EVENT=backup_code_used`.
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        if let Ok(journald) = tracing_journald::layer() {
            let journald = journald.with_field_prefix(Some("SMSOTP".into()));
            tracing_subscriber::registry()
                .with(filter())
                .with(journald)
                .init();
            return;
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
}

async fn serve(config_path: PathBuf, runtime: Runtime, activated: Activated) -> ExitCode {
    // reqwest is built without a default TLS backend; pick ring once here.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let public_path = runtime.config.socket.clone();
    let root_path = runtime.config.root_socket.clone();
    let limits = Limits {
        max_connections: connection_cap(runtime.config.max_connections),
        max_connections_per_user: runtime.config.max_connections_per_user,
    };
    let from_systemd = activated.any();
    // Sockets systemd made are systemd's to remove; those we bind are ours.
    let mut ours = Vec::new();
    let public = match listen(activated.public, &public_path, Access::Public, &mut ours) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let root = match listen(activated.root, &root_path, Access::RootOnly, &mut ours) {
        Ok(l) => l,
        Err(code) => {
            remove_sockets(&ours);
            return code;
        }
    };
    warn_if_root_socket_is_open(&root_path);
    // Without its state the daemon cannot enforce budgets or spend backup
    // codes once, so it never serves loosely: a bad SQLite file stops it,
    // an unreachable PostgreSQL is waited for while every request is
    // refused (store_wait says why the sockets must stay).
    let store = match smsotpd::store_wait::open(&runtime.config.store, [&public, &root]).await {
        Ok(s) => s,
        Err(e) => {
            error!(error = %e, "cannot open the state store");
            remove_sockets(&ours);
            return ExitCode::FAILURE;
        }
    };
    info!(
        socket = %public_path.display(),
        root_socket = %root_path.display(),
        socket_activated = from_systemd,
        max_connections = limits.max_connections,
        max_connections_per_user = limits.max_connections_per_user,
        users = runtime.users.len(),
        providers = %runtime.chain.names().join(","),
        version = env!("CARGO_PKG_VERSION"),
        "listening"
    );
    let state = State::new(config_path, runtime, store);
    smsotpd::metrics::start(&state).await;
    let (Ok(mut hup), Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::hangup()),
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        error!("cannot install signal handlers");
        remove_sockets(&ours);
        return ExitCode::FAILURE;
    };
    let reload_state = Arc::clone(&state);
    let shutdown = async move {
        loop {
            tokio::select! {
                _ = hup.recv() => reload(&reload_state),
                _ = term.recv() => break,
                _ = int.recv() => break,
            }
        }
        info!("shutting down");
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    };
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
    let listeners = Listeners {
        public,
        root: Some(root),
    };
    // On a worker rather than this (the main) thread: each accepted
    // session is then spawned onto the accepting worker's own queue and
    // usually runs there, instead of every connection waking a worker
    // from outside (fewer cross-thread wake-ups per login).
    let served = tokio::spawn(server::run(listeners, state, limits, shutdown)).await;
    remove_sockets(&ours);
    if let Err(e) = served {
        error!(error = %e, "the server stopped abnormally");
        return ExitCode::FAILURE;
    }
    info!("stopped");
    ExitCode::SUCCESS
}

/// The socket systemd passed, or one bound here (and noted in `ours`).
fn listen(
    activated: Option<std::os::unix::net::UnixListener>,
    path: &Path,
    access: Access,
    ours: &mut Vec<PathBuf>,
) -> Result<tokio::net::UnixListener, ExitCode> {
    let bound = match activated {
        Some(l) => tokio::net::UnixListener::from_std(l),
        None => listener::bind(path, access).inspect(|_| ours.push(path.to_path_buf())),
    };
    bound.map_err(|e| {
        error!(socket = %path.display(), role = access.name(), error = %e, "cannot listen");
        ExitCode::FAILURE
    })
}

fn remove_sockets(ours: &[PathBuf]) {
    for path in ours {
        let _ = std::fs::remove_file(path);
    }
}

/// A socket unit without `SocketMode=0600` for the root socket: peers
/// that are not root are still closed at once, but can fill its backlog.
fn warn_if_root_socket_is_open(path: &Path) {
    use std::os::unix::fs::MetadataExt;
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.mode() & 0o077 != 0 || meta.uid() != 0 {
            warn!(
                root_socket = %path.display(),
                mode = format!("{:04o}", meta.mode() & 0o7777),
                owner_uid = meta.uid(),
                "the root socket is not root's alone (want root:root 0600, SocketMode=0600 in smsotpd.socket)"
            );
        }
    }
}

fn reload(state: &State) {
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Reloading]);
    match state.reload() {
        Ok(need_restart) => {
            let rt = state.runtime();
            info!(users = rt.users.len(), providers = %rt.chain.names().join(","), "configuration reloaded");
            for key in need_restart {
                warn!(key, "changed, but only takes effect after a restart");
            }
        }
        Err(e) => error!(error = %e, "reload failed; keeping the previous configuration"),
    }
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
}

/// File descriptors kept back for the store, provider connections, logs.
const RESERVED_FDS: u64 = 64;

/// The per-socket connection cap the open-file limit can honour for both
/// sockets. Past it `accept` fails with EMFILE and connections wait
/// unanswered (the module then denies, but nobody is served). So the soft
/// limit is raised to the hard one, and the cap clamped to what fits.
fn connection_cap(configured: usize) -> usize {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return configured;
    };
    let soft = if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        hard
    } else {
        soft
    };
    let fits = usize::try_from(soft.saturating_sub(RESERVED_FDS) / 2)
        .unwrap_or(usize::MAX)
        .max(1);
    if configured > fits {
        warn!(
            max_connections = configured,
            open_file_limit = soft,
            using = fits,
            "max_connections (per socket, two sockets) exceeds what the open-file limit allows; lowering it"
        );
        return fits;
    }
    configured
}
