//! `smsotpctl status [USER]` and `smsotpctl unlock USER`.

use super::output::{self, clean, Failure, DEFAULT_TIMEOUT_SECS};
use super::{ConnArgs, Ctx};
use clap::Args;
use smsotp_proto::{Request, UserStatus};

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct StatusArgs {
    /// Login name (default: you).
    pub user: Option<String>,
    #[command(flatten)]
    pub conn: ConnArgs,
}

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct UnlockArgs {
    /// Login name.
    pub user: String,
    #[command(flatten)]
    pub conn: ConnArgs,
}

pub fn status(args: &StatusArgs, ctx: &Ctx) -> Result<(), Failure> {
    let user = super::user_or_self(&args.user)?;
    let timeout = output::timeout(&args.conn, DEFAULT_TIMEOUT_SECS);
    let status =
        output::call(ctx.socket, timeout, &Request::Status { user }).and_then(|r| r.into_status());
    let status = match status {
        Ok(s) => s,
        // The daemon could not read its state: say whether the store
        // answers (and, to root, why not) before the failure itself.
        Err(failure) if failure.kind == "internal" => {
            if let Ok(h) = super::store::health(ctx, timeout) {
                eprint!("{}", super::store::format_health(&h));
            }
            return Err(failure);
        }
        Err(failure) => return Err(failure),
    };
    // A daemon older than the question has no answer: no line then.
    let health = super::store::health(ctx, timeout).ok();
    if ctx.json {
        #[derive(serde::Serialize)]
        struct WithHealth<'a> {
            #[serde(flatten)]
            status: &'a UserStatus,
            store_health: Option<smsotp_proto::StoreHealth>,
        }
        output::print_json(&WithHealth {
            status: &status,
            store_health: health,
        })
    } else {
        let mut text = format_status(&status);
        if let Some(h) = &health {
            text += &format!("{:<18} {}\n", "store health:", super::store::answer_text(h));
        }
        output::print_human(&text)
    }
}

pub fn unlock(args: &UnlockArgs, ctx: &Ctx) -> Result<(), Failure> {
    let message = output::call(
        ctx.socket,
        output::timeout(&args.conn, DEFAULT_TIMEOUT_SECS),
        &Request::Unlock {
            user: args.user.clone(),
        },
    )?
    .into_done()?;
    output::print_done(
        ctx,
        &args.user,
        "unlock",
        &message,
        &format!("{}: unlocked", args.user),
    )
}

/// `yes (N min left)`, rounding up so a lock never shows as 0 minutes.
pub fn locked_text(status: &UserStatus) -> String {
    match (status.locked, status.locked_for_secs) {
        (false, _) => "no".into(),
        (true, None) => "yes".into(),
        (true, Some(secs)) => format!("yes ({} min left)", secs.div_ceil(60).max(1)),
    }
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// Aligned `key: value` lines. The number is printed exactly as the daemon
/// sent it (masked); this function has no way to see a full one.
pub fn format_status(s: &UserStatus) -> String {
    let rows: [(&str, String); 9] = [
        ("user", clean(&s.user)),
        (
            "mobile",
            s.mobile
                .as_deref()
                .map(clean)
                .unwrap_or_else(|| "none".into()),
        ),
        ("mobile source", clean(&s.mobile_source)),
        ("locked", locked_text(s)),
        ("recent failures", s.recent_failures.to_string()),
        ("lockouts", s.lockouts.to_string()),
        ("backup codes left", s.backup_codes_left.to_string()),
        ("opted out", yes_no(s.opted_out).into()),
        ("store", s.store.name().into()),
    ];
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
    let mut out = String::new();
    for (key, value) in &rows {
        out.push_str(&format!("{:<width$} {value}\n", format!("{key}:")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::testing::parse;
    use crate::commands::Admin;

    pub(crate) fn sample() -> UserStatus {
        UserStatus {
            user: "alice".into(),
            mobile: Some("********4567".into()),
            mobile_source: "users.toml".into(),
            locked: true,
            locked_for_secs: Some(61),
            recent_failures: 5,
            lockouts: 2,
            backup_codes_left: 7,
            opted_out: false,
            store: smsotp_proto::StoreKind::Sqlite,
        }
    }

    #[test]
    fn parses_status_with_and_without_user() {
        let (cmd, _) = parse(&["status"]).unwrap();
        assert_eq!(
            cmd_status(cmd),
            StatusArgs {
                user: None,
                conn: ConnArgs::default()
            }
        );
        let (cmd, _) = parse(&["status", "bob", "--timeout", "2"]).unwrap();
        assert_eq!(
            cmd_status(cmd),
            StatusArgs {
                user: Some("bob".into()),
                conn: ConnArgs { timeout: Some(2) }
            }
        );
        assert!(parse(&["status", "a", "b"]).is_err());
    }

    fn cmd_status(cmd: Admin) -> StatusArgs {
        match cmd {
            Admin::Status(a) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parses_unlock() {
        let (cmd, _) = parse(&["unlock", "carol"]).unwrap();
        match cmd {
            Admin::Unlock(a) => assert_eq!(a.user, "carol"),
            other => panic!("{other:?}"),
        }
        assert!(parse(&["unlock"]).is_err());
    }

    #[test]
    fn human_status_is_aligned_key_value_lines() {
        assert_eq!(
            format_status(&sample()),
            "\
user:              alice
mobile:            ********4567
mobile source:     users.toml
locked:            yes (2 min left)
recent failures:   5
lockouts:          2
backup codes left: 7
opted out:         no
store:             sqlite
"
        );
    }

    #[test]
    fn locked_rounds_up_and_handles_unknown_and_unlocked() {
        let mut s = sample();
        s.locked_for_secs = Some(1);
        assert_eq!(locked_text(&s), "yes (1 min left)");
        s.locked_for_secs = Some(0);
        assert_eq!(locked_text(&s), "yes (1 min left)");
        s.locked_for_secs = Some(900);
        assert_eq!(locked_text(&s), "yes (15 min left)");
        s.locked_for_secs = None;
        assert_eq!(locked_text(&s), "yes");
        s.locked = false;
        assert_eq!(locked_text(&s), "no");
    }

    #[test]
    fn no_number_shows_none() {
        let mut s = sample();
        s.mobile = None;
        s.mobile_source = "none".into();
        s.locked = false;
        s.opted_out = true;
        let text = format_status(&s);
        assert!(text.contains("\nmobile:            none\n"), "{text}");
        assert!(text.contains("\nlocked:            no\n"), "{text}");
        assert!(text.contains("\nopted out:         yes\n"), "{text}");
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["mobile"], serde_json::Value::Null);
    }

    #[test]
    fn json_status_is_the_daemons_object_plus_ok() {
        let json = serde_json::to_value(output::success(&sample())).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"ok": true, "user": "alice", "mobile": "********4567",
                "mobile_source": "users.toml", "locked": true, "locked_for_secs": 61,
                "recent_failures": 5, "lockouts": 2, "backup_codes_left": 7,
                "opted_out": false, "store": "sqlite"})
        );
    }

    #[test]
    fn an_older_daemon_without_the_store_field_shows_unknown() {
        let mut json = serde_json::to_value(sample()).unwrap();
        json.as_object_mut().unwrap().remove("store");
        let s: UserStatus = serde_json::from_value(json).unwrap();
        assert!(format_status(&s).ends_with("\nstore:             unknown\n"));
        let future: UserStatus = serde_json::from_value(serde_json::json!({"user": "a",
            "mobile": null, "mobile_source": "none", "locked": false, "locked_for_secs": null,
            "recent_failures": 0, "lockouts": 0, "backup_codes_left": 0, "opted_out": false,
            "store": "etcd"}))
        .unwrap();
        assert_eq!(future.store, smsotp_proto::StoreKind::Unknown);
    }

    /// The formatter shows the number it was given and nothing else that
    /// looks like one, in both output forms.
    #[test]
    fn mobile_is_printed_exactly_as_given() {
        for given in ["********4567", "+********67", "***"] {
            let mut s = sample();
            s.mobile = Some(given.into());
            let text = format_status(&s);
            let mobile_lines: Vec<&str> =
                text.lines().filter(|l| l.starts_with("mobile:")).collect();
            assert_eq!(mobile_lines, [format!("mobile:            {given}")]);
            // No other line carries a `*`-masked or `+`-prefixed number.
            for line in text.lines().filter(|l| !l.starts_with("mobile:")) {
                assert!(!line.contains('*') && !line.contains('+'), "{line}");
            }
            let json = serde_json::to_value(output::success(&s)).unwrap();
            assert_eq!(json["mobile"], given);
            let mobile_keys: Vec<&String> = json
                .as_object()
                .unwrap()
                .keys()
                .filter(|k| k.contains("mobile") && k.as_str() != "mobile_source")
                .collect();
            assert_eq!(mobile_keys, ["mobile"]);
        }
    }

    #[test]
    fn terminal_escapes_from_the_daemon_are_neutralised() {
        let mut s = sample();
        s.user = "al\x1b[2Jice".into();
        assert!(format_status(&s).starts_with("user:              al?[2Jice\n"));
    }
}
