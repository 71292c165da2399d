//! `[metrics]`: Prometheus exposition, off unless a key here is set. A
//! loopback-only HTTP listener (`listen`) and/or a node_exporter textfile
//! (`textfile`, rewritten every `textfile_interval_seconds`).

use crate::error::Invalid;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsConfig {
    /// `GET /metrics` here; always a loopback address.
    pub listen: Option<SocketAddr>,
    /// node_exporter's textfile collector reads `*.prom` in its directory.
    pub textfile: Option<PathBuf>,
    pub textfile_interval: Duration,
}

impl MetricsConfig {
    pub fn enabled(&self) -> bool {
        self.listen.is_some() || self.textfile.is_some()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    pub listen: Option<String>,
    pub textfile: Option<PathBuf>,
    pub textfile_interval_seconds: Option<i64>,
}

pub(crate) fn validate(raw: RawMetrics) -> Result<MetricsConfig, Invalid> {
    let listen = raw
        .listen
        .map(|l| {
            let addr: SocketAddr = l.parse().map_err(|_| {
                Invalid::new(
                    "metrics.listen",
                    format!("must be ADDRESS:PORT such as \"127.0.0.1:9587\", not {l:?}"),
                )
            })?;
            // The counts say how often which provider fails and how many
            // logins are locked out: for this host's scraper, not the
            // network. Off-host scrapes go through an agent or the textfile.
            if !addr.ip().is_loopback() {
                return Err(Invalid::new(
                    "metrics.listen",
                    format!(
                        "must be a loopback address (127.0.0.1 or [::1]), not {}: the metrics \
                         are served without authentication; let a local agent or \
                         node_exporter's textfile (metrics.textfile) carry them off the host",
                        addr.ip()
                    ),
                ));
            }
            Ok(addr)
        })
        .transpose()?;
    let textfile = raw
        .textfile
        .map(|p| {
            if !p.is_absolute() || p.extension().is_none_or(|e| e != "prom") {
                return Err(Invalid::new(
                    "metrics.textfile",
                    format!(
                        "must be an absolute path ending in .prom (node_exporter reads only \
                         those), not {p:?}"
                    ),
                ));
            }
            Ok(p)
        })
        .transpose()?;
    let secs = crate::validate::in_range(
        "metrics.textfile_interval_seconds",
        raw.textfile_interval_seconds,
        15,
        1,
        3600,
    )?;
    Ok(MetricsConfig {
        listen,
        textfile,
        textfile_interval: Duration::from_secs(secs as u64),
    })
}

#[cfg(test)]
mod tests {
    use crate::parse;
    use std::path::Path;

    fn err(text: &str) -> String {
        parse(Path::new("/etc/smsotp/smsotpd.toml"), text)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn off_by_default_and_loopback_only() {
        let c = parse(Path::new("/x.toml"), "").unwrap();
        assert!(!c.metrics.enabled());
        let c = parse(
            Path::new("/x.toml"),
            "[metrics]\nlisten = \"[::1]:9587\"\ntextfile = \"/var/lib/prometheus/node-exporter/smsotp.prom\"\n",
        )
        .unwrap();
        assert_eq!(c.metrics.listen.unwrap().port(), 9587);
        assert_eq!(c.metrics.textfile_interval.as_secs(), 15);
        for bad in ["0.0.0.0:9587", "192.0.2.1:9587", "[::]:9587"] {
            let e = err(&format!("[metrics]\nlisten = \"{bad}\"\n"));
            assert!(
                e.contains(":2: metrics.listen: must be a loopback address"),
                "{e}"
            );
        }
        let e = err("[metrics]\nlisten = \"localhost\"\n");
        assert!(e.contains("metrics.listen: must be ADDRESS:PORT"), "{e}");
        let e = err("[metrics]\ntextfile = \"/tmp/smsotp.txt\"\n");
        assert!(
            e.contains("metrics.textfile: must be an absolute path ending in .prom"),
            "{e}"
        );
        let e = err("[metrics]\ntextfile_interval_seconds = 0\n");
        assert!(
            e.contains("metrics.textfile_interval_seconds: must be between 1 and 3600"),
            "{e}"
        );
    }
}
