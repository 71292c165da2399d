//! The HTTPS client every HTTP provider is built with: the system trust
//! store plus an optional extra CA file, an optional explicit proxy, no
//! redirects, and pooled keep-alive connections so the second code to a
//! gateway skips the TCP and TLS handshakes.

use super::ProviderError;
use reqwest::{Certificate, Client, Proxy};
use smsotp_config::provider::HttpTransport;
use std::io::Read;
use std::time::Duration;

/// A CA bundle is a few hundred KiB at most.
const MAX_CA_FILE: u64 = 1024 * 1024;
/// Idle connections are kept this long: longer than the gap between two
/// logins on a busy host, shorter than most gateways' own idle timeout.
const POOL_IDLE: Duration = Duration::from_secs(60);
/// Where Debian's ca-certificates puts the bundle the client trusts.
const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

pub(crate) fn build(timeout: Duration, transport: &HttpTransport) -> Result<Client, ProviderError> {
    // The caller (state.rs) prefixes "provider NAME: " already.
    let bad = ProviderError::Config;
    // The daemon installs the ring provider at startup; doing it here as
    // well (a no-op Err if one is already installed) keeps reqwest from
    // panicking in tests and other binaries that forgot to.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = Client::builder()
        // A redirect would resend the number and the code (in the URL or
        // the body) to a host the admin never configured.
        .redirect(reqwest::redirect::Policy::none())
        // `timeout` bounds the whole exchange, body included; the connect
        // timeout only makes a dead host fail with a clearer error.
        .timeout(timeout)
        .connect_timeout(timeout)
        .pool_idle_timeout(POOL_IDLE)
        .pool_max_idle_per_host(8)
        .tcp_keepalive(Duration::from_secs(30))
        .user_agent(concat!("smsotpd/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = &transport.ca_file {
        // Whoever can change it could add their own CA and read every
        // code and credential on the way to the gateway.
        smsotp_config::perms::check(path, smsotp_config::perms::Role::CaFile)
            .map_err(|e| bad(format!("ca_file: {e}")))?;
        let certs =
            read_ca_file(path).map_err(|e| bad(format!("ca_file {}: {e}", path.display())))?;
        // Merged with the system roots, not instead of them: the extra CA
        // is for one gateway or proxy, the rest of the world stays trusted.
        builder = builder.tls_certs_merge(certs);
    }
    builder = match &transport.proxy {
        Some(url) => {
            builder.proxy(Proxy::all(url.as_str()).map_err(|e| bad(format!("proxy {url}: {e}")))?)
        }
        // Only the configured proxy: an `https_proxy` in the environment
        // must not silently route codes and credentials elsewhere.
        None => builder.no_proxy(),
    };
    builder
        .build()
        .map_err(|e| bad(format!("cannot build the HTTP client: {}", explain(&e))))
}

/// reqwest's own text is just "builder error"; the cause is in the source
/// chain. On a minimal system it is nearly always a missing trust store,
/// so say which file and which package.
fn explain(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    if !std::path::Path::new(SYSTEM_CA_BUNDLE).exists() {
        text = format!(
            "{text} (the system CA certificates are missing: no {SYSTEM_CA_BUNDLE}; \
             install the ca-certificates package)"
        );
    }
    text
}

/// A CA file's bytes, bounded; also read by the PostgreSQL store.
pub(crate) fn read_ca_pem(path: &std::path::Path) -> Result<Vec<u8>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot be read: {e}"))?;
    let mut pem = Vec::new();
    file.take(MAX_CA_FILE + 1)
        .read_to_end(&mut pem)
        .map_err(|e| format!("cannot be read: {e}"))?;
    if pem.len() as u64 > MAX_CA_FILE {
        return Err(format!("is larger than {MAX_CA_FILE} bytes"));
    }
    Ok(pem)
}

fn read_ca_file(path: &std::path::Path) -> Result<Vec<Certificate>, String> {
    let pem = read_ca_pem(path)?;
    let certs = Certificate::from_pem_bundle(&pem).map_err(|e| format!("is not PEM: {e}"))?;
    if certs.is_empty() {
        return Err("holds no PEM certificate".into());
    }
    Ok(certs)
}
