//! `smsotpd --check-directory [--directory-user NAME]...`: connects with
//! the daemon's own configuration and code (TLS, bind, search, E.164
//! normalisation) and prints one JSON object a line, for people and for
//! `smsotpctl doctor`. Numbers are printed masked, like every log line.

use super::cache::Answer;
use super::Directory;
use serde_json::json;
use smsotp_config::DirectoryTls;

/// Every line it prints; `true` when everything asked for worked.
pub async fn run(dir: &Directory, users: &[String]) -> (Vec<serde_json::Value>, bool) {
    let tls = match dir.client.tls() {
        DirectoryTls::Ldaps => "ldaps",
        DirectoryTls::StartTls => "starttls",
        DirectoryTls::Plain => "none (loopback)",
    };
    let bind = dir.cfg.bind_dn.as_deref().unwrap_or("anonymous");
    let mut lines = Vec::new();
    let mut ok = true;
    match dir.client.probe().await {
        Ok(()) => lines.push(json!({
            "check": "connection", "ok": true, "url": dir.cfg.url, "tls": tls, "bind": bind,
            "detail": format!("connected ({tls}), bound as {bind}, base_dn {} readable", dir.cfg.base_dn),
        })),
        Err(e) => {
            lines.push(json!({
                "check": "connection", "ok": false, "url": dir.cfg.url, "tls": tls, "bind": bind,
                "detail": e.to_string(),
            }));
            return (lines, false);
        }
    }
    for user in users {
        let (found, detail) = match dir.ask(user).await {
            Ok(Answer::Number(m)) => (true, format!("number {}", m.masked(dir.visible))),
            Ok(Answer::NoNumber) => (false, "no entry or no number attribute".to_string()),
            Ok(Answer::Unreadable) => (
                false,
                "a value is there but is not a valid phone number (see default_country)"
                    .to_string(),
            ),
            Err(e) => (false, e.to_string()),
        };
        ok &= found;
        lines.push(json!({"check": "user", "user": user, "ok": found, "detail": detail}));
    }
    (lines, ok)
}
