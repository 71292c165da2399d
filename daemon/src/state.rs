//! What every connection reads: config, the user map and the providers,
//! swapped as one unit on SIGHUP so a login never sees half a reload.

use crate::otp::CodeHasher;
use crate::providers::{self, Chain};
use crate::store::Store;
use smsotp_config::perms::{self, PermError, Role};
use smsotp_config::{ConfigError, DaemonConfig, Users};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// One consistent generation of configuration.
pub struct Runtime {
    pub config: DaemonConfig,
    pub users: Users,
    pub chain: Chain,
    /// `{{host}}` in messages.
    pub hostname: String,
    /// `[directory]`: its connection and cache live as long as this generation.
    pub directory: Option<Arc<crate::directory::Directory>>,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// A file others could change (or, for secrets, read).
    #[error("{0}")]
    Permissions(#[from] PermError),
    /// A template that can take more SMS segments than allowed.
    #[error("{0}")]
    Segments(String),
    #[error("{0}")]
    Directory(String),
    #[error("provider {name}: {error}")]
    Provider {
        name: String,
        error: providers::ProviderError,
    },
}

impl Runtime {
    /// Every file is checked before it is believed (start, `--check-config`
    /// and SIGHUP all come here): the config and users here, credentials,
    /// CA files and the outbox where the providers are built.
    pub fn load(config_path: &Path) -> Result<Runtime, LoadError> {
        perms::check(config_path, Role::Config)?;
        let config = smsotp_config::load(config_path)?;
        Runtime::from_config(config)
    }

    pub fn from_config(config: DaemonConfig) -> Result<Runtime, LoadError> {
        // The store is opened once at start (where it is checked again, by
        // `SqliteStore::open`); checking it here too lets `--check-config`
        // find a loosened store, and a reload tell about one.
        perms::check_named_files(&config)?;
        let users = Users::load(&config.users_file)?;
        let mut list = Vec::with_capacity(config.providers.len());
        for p in &config.providers {
            list.push(providers::build(p).map_err(|error| LoadError::Provider {
                name: p.name().to_string(),
                error,
            })?);
        }
        let hostname = config.hostname.clone().unwrap_or_else(system_hostname);
        crate::lang::check_segments(&config, &hostname).map_err(LoadError::Segments)?;
        let directory = match &config.directory {
            Some(d) => Some(Arc::new(
                crate::directory::Directory::new(d, usize::from(config.mask_visible_digits))
                    .map_err(|e| LoadError::Directory(format!("directory: {e}")))?,
            )),
            None => None,
        };
        let chain = Chain::new(list).masking(usize::from(config.mask_visible_digits));
        Ok(Runtime {
            config,
            users,
            chain,
            hostname,
            directory,
        })
    }
}

impl Runtime {
    /// A number as log lines show it: masked to `message.mask_visible_digits`
    /// like the prompt, never in full.
    pub fn log_mobile(&self, mobile: &smsotp_config::Mobile) -> String {
        mobile.masked(usize::from(self.config.mask_visible_digits))
    }
}

fn system_hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Shared by all connections for the daemon's lifetime.
pub struct State {
    config_path: PathBuf,
    runtime: RwLock<Arc<Runtime>>,
    pub hasher: CodeHasher,
    /// Durable state; opened once, not swapped by a reload.
    pub store: Arc<dyn Store>,
    /// The only way to run argon2 (backup codes), bounded daemon-wide.
    pub hashing: crate::hashing::Hashing,
    /// Step-up codes sent for self-service changes, not yet used.
    pub stepups: crate::stepup::StepUps,
    /// One self-service request in flight per uid, a few sets an hour.
    pub self_service: crate::ratelimit::PerUid,
    /// How long the last real send took, in microseconds: a fake challenge
    /// for an unknown user waits about as long, so timing does not tell.
    last_send_micros: AtomicU64,
}

impl State {
    pub fn new(config_path: PathBuf, runtime: Runtime, store: Arc<dyn Store>) -> Arc<State> {
        Arc::new(State {
            config_path,
            runtime: RwLock::new(Arc::new(runtime)),
            hasher: CodeHasher::new(),
            store,
            hashing: crate::hashing::Hashing::new(),
            stepups: Default::default(),
            self_service: Default::default(),
            last_send_micros: AtomicU64::new(50_000),
        })
    }

    pub fn note_send_time(&self, took: std::time::Duration) {
        let micros = took.as_micros().min(u128::from(u64::MAX)) as u64;
        self.last_send_micros.store(micros, Ordering::Relaxed);
    }

    pub fn typical_send_time(&self) -> std::time::Duration {
        std::time::Duration::from_micros(self.last_send_micros.load(Ordering::Relaxed))
    }

    /// The current generation. Held for one request, never across a wait.
    pub fn runtime(&self) -> Arc<Runtime> {
        match self.runtime.read() {
            Ok(g) => Arc::clone(&g),
            // A panic while holding the lock cannot leave a half-written
            // Arc, so the value is still sound.
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Re-reads config and users. On any error the old generation stays and
    /// the error is returned for the log. Settings that only apply at start
    /// (socket, max_connections) are reported, not applied.
    pub fn reload(&self) -> Result<Vec<&'static str>, LoadError> {
        let fresh = Runtime::load(&self.config_path)?;
        let old = self.runtime();
        let mut need_restart = Vec::new();
        if fresh.config.socket != old.config.socket {
            need_restart.push("socket");
        }
        if fresh.config.root_socket != old.config.root_socket {
            need_restart.push("root_socket");
        }
        if fresh.config.max_connections_per_user != old.config.max_connections_per_user {
            need_restart.push("max_connections_per_user");
        }
        if fresh.config.max_connections != old.config.max_connections {
            need_restart.push("max_connections");
        }
        if fresh.config.log_level != old.config.log_level {
            need_restart.push("log_level");
        }
        if fresh.config.store != old.config.store {
            need_restart.push("store");
        }
        match self.runtime.write() {
            Ok(mut g) => *g = Arc::new(fresh),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(fresh),
        }
        Ok(need_restart)
    }
}
