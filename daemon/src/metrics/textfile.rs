//! node_exporter's textfile collector: the metrics written to a `.prom`
//! file every interval, through a temporary file in the same directory
//! and a rename, so the collector never reads half a file.
//!
//! The collector parses the Prometheus text format, not OpenMetrics: a
//! counter's TYPE names the `_total` series itself, and there is no
//! `# EOF` or `# UNIT` (which it would take for comments at best).

use crate::state::State;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub async fn run(path: PathBuf, every: Duration, state: Arc<State>) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tick.tick().await;
        let text = prometheus_text(&super::render(&state));
        let p = path.clone();
        let written = tokio::task::spawn_blocking(move || write_atomically(&p, &text)).await;
        match written {
            Ok(Ok(())) => {
                if failing {
                    tracing::info!(textfile = %path.display(), "metrics textfile written again");
                }
                failing = false;
            }
            Ok(Err(e)) if !failing => {
                // Once per outage, not every interval.
                tracing::warn!(textfile = %path.display(), error = %e, "cannot write the metrics textfile");
                failing = true;
            }
            _ => {}
        }
    }
}

fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    // Not `.prom`: the collector must not read the file being written.
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.set_permissions(std::fs::Permissions::from_mode(0o644))?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// OpenMetrics text as the Prometheus text format.
pub fn prometheus_text(openmetrics: &str) -> String {
    let mut counters = Vec::new();
    for line in openmetrics.lines() {
        if let Some(name) = line
            .strip_prefix("# TYPE ")
            .and_then(|r| r.strip_suffix(" counter"))
        {
            counters.push(name.to_string());
        }
    }
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# TYPE ", "# HELP "].iter().find_map(|p| {
            let rest = line.strip_prefix(p)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .iter()
                .any(|c| c == name)
                .then(|| format!("{p}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::prometheus_text;

    #[test]
    fn counters_are_named_by_their_series_and_openmetrics_lines_go() {
        let om = "# HELP smsotp_lockouts Logins refused.\n# TYPE smsotp_lockouts counter\n\
                  smsotp_lockouts_total 3\n# HELP smsotp_x_seconds T.\n# TYPE smsotp_x_seconds histogram\n\
                  # UNIT smsotp_x_seconds seconds\nsmsotp_x_seconds_sum 0.5\n# EOF\n";
        assert_eq!(
            prometheus_text(om),
            "# HELP smsotp_lockouts_total Logins refused.\n# TYPE smsotp_lockouts_total counter\n\
             smsotp_lockouts_total 3\n# HELP smsotp_x_seconds T.\n# TYPE smsotp_x_seconds histogram\n\
             smsotp_x_seconds_sum 0.5\n"
        );
    }
}
