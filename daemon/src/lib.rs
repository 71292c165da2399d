//! smsotpd as a library, so tests can run the server in-process and the
//! binary stays a thin shell (arguments, signals, sd_notify).

pub mod account;
pub mod activation;
pub mod admin;
pub mod authz;
pub mod backup;
pub mod directory;
pub mod hashing;
pub mod lang;
pub mod listener;
pub mod login;
pub mod metrics;
pub mod notice;
pub mod numbers;
pub mod otp;
pub mod policy;
pub mod providers;
pub mod ratelimit;
pub mod refusals;
pub mod reply;
pub mod rules;
pub mod send;
pub mod server;
pub mod session;
pub mod slots;
pub mod state;
pub mod stepup;
pub mod store;
pub mod store_import;
pub mod store_probe;
pub mod store_wait;
pub mod wire;

/// What the daemon says in its hello.
pub const SERVER_NAME: &str = concat!("smsotpd/", env!("CARGO_PKG_VERSION"));
