//! sshd: what `sshd -T` says about the settings that decide whether the
//! PAM stack (and so the code prompt) is ever reached.

use super::{DoctorArgs, Finding, Host, Severity};
use std::collections::HashMap;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SSHD_T_TIMEOUT: Duration = Duration::from_secs(10);

pub fn check(host: &Host, args: &DoctorArgs) -> Vec<Finding> {
    if !args.sshd.is_file() {
        return vec![Finding::new(
            "sshd.absent",
            Severity::Info,
            args.sshd.display().to_string(),
            "sshd is not installed here; its checks are skipped",
        )];
    }
    let config = args.sshd_config.clone().or_else(|| {
        (!host.is_real_root()).then(|| host.path(std::path::Path::new("/etc/ssh/sshd_config")))
    });
    let mut cmd = Command::new(&args.sshd);
    cmd.arg("-T");
    if let Some(c) = &config {
        cmd.arg("-f").arg(c);
    }
    if let Some(m) = &args.sshd_match {
        cmd.arg("-C").arg(m);
    }
    let subject = match &config {
        Some(c) => format!("sshd -T -f {}", c.display()),
        None => "sshd -T".to_string(),
    };
    match run_bounded(&mut cmd, SSHD_T_TIMEOUT) {
        Ok(text) => evaluate(&parse(&text), &subject, args.sshd_match.is_some()),
        Err(e) => vec![Finding::new(
            "sshd.unreadable",
            Severity::Error,
            subject,
            format!("cannot evaluate the sshd configuration: {e}"),
        )
        .fix("run `sshd -t` and correct what it reports (sshd refuses to start with this config)")],
    }
}

/// Runs `cmd`, returns stdout; fails on a non-zero exit (with stderr) or
/// when it takes longer than `limit` (the process is killed).
fn run_bounded(cmd: &mut Command, limit: Duration) -> Result<String, String> {
    let (status, out, err) = run_bounded_output(cmd, limit)?;
    if status.success() {
        Ok(out)
    } else {
        Err(format!("{status}: {}", err.trim()))
    }
}

/// Runs `cmd` within `limit` (killed after it); its exit status, stdout
/// and stderr.
pub(super) fn run_bounded_output(
    cmd: &mut Command,
    limit: Duration,
) -> Result<(std::process::ExitStatus, String, String), String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut stdout = child.stdout.take().ok_or("no stdout")?;
    let mut stderr = child.stderr.take().ok_or("no stderr")?;
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(st) = child.try_wait().map_err(|e| e.to_string())? {
            break st;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("no answer within {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = out_reader.join().unwrap_or_default();
    let err = err_reader.join().unwrap_or_default();
    Ok((status, out, err))
}

/// `sshd -T` output: lower-case keyword, then its value.
pub fn parse(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.trim().split_once(' ')?;
            Some((k.to_ascii_lowercase(), v.trim().to_string()))
        })
        .collect()
}

fn yes(conf: &HashMap<String, String>, key: &str) -> bool {
    conf.get(key).is_some_and(|v| v.eq_ignore_ascii_case("yes"))
}

/// The checks on a parsed `sshd -T`.
pub fn evaluate(conf: &HashMap<String, String>, subject: &str, matched: bool) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut bad = false;
    if !yes(conf, "usepam") {
        bad = true;
        out.push(
            Finding::new(
                "sshd.usepam",
                Severity::Error,
                subject,
                "UsePAM is not `yes`: sshd never runs the PAM auth stack, so nobody is asked for a code",
            )
            .fix("`UsePAM yes` in /etc/ssh/sshd_config.d/smsotp.conf, then `sshd -t && systemctl reload ssh`"),
        );
    }
    let kbd = conf
        .get("kbdinteractiveauthentication")
        .or_else(|| conf.get("challengeresponseauthentication"));
    if !kbd.is_some_and(|v| v.eq_ignore_ascii_case("yes")) {
        bad = true;
        out.push(
            Finding::new(
                "sshd.kbdinteractive",
                Severity::Error,
                subject,
                "KbdInteractiveAuthentication is not `yes`: PAM prompts (the code) never reach ssh clients",
            )
            .fix(
                "`KbdInteractiveAuthentication yes` in /etc/ssh/sshd_config.d/smsotp.conf (the drop-in \
                 is read before Debian's `KbdInteractiveAuthentication no`, and the first value wins)",
            ),
        );
    }
    // Which single methods are enabled at all.
    let enabled = |m: &str| match m {
        "publickey" => yes(conf, "pubkeyauthentication"),
        "password" => yes(conf, "passwordauthentication"),
        "hostbased" => yes(conf, "hostbasedauthentication"),
        "gssapi-with-mic" => yes(conf, "gssapiauthentication"),
        "keyboard-interactive" => kbd.is_some_and(|v| v.eq_ignore_ascii_case("yes")),
        _ => true,
    };
    let methods = conf
        .get("authenticationmethods")
        .map(String::as_str)
        .unwrap_or("any");
    let lists: Vec<Vec<String>> = if methods.eq_ignore_ascii_case("any") {
        ["publickey", "password", "hostbased", "gssapi-with-mic"]
            .iter()
            .filter(|m| enabled(m))
            .map(|m| vec![m.to_string()])
            .collect()
    } else {
        methods
            .split_whitespace()
            .map(|l| {
                l.split(',')
                    .map(|m| m.split(':').next().unwrap_or(m).to_string())
                    .collect()
            })
            .collect()
    };
    for list in &lists {
        if list.iter().any(|m| m == "keyboard-interactive") || !list.iter().all(|m| enabled(m)) {
            continue;
        }
        bad = true;
        let shown = list.join(",");
        out.push(
            Finding::new(
                if list == &["publickey"] {
                    "sshd.publickey-alone"
                } else {
                    "sshd.methods"
                },
                Severity::Error,
                subject,
                if methods.eq_ignore_ascii_case("any") {
                    format!(
                        "AuthenticationMethods is `any` and {shown} is enabled: {shown} alone logs in \
                         without the SMS code"
                    )
                } else {
                    format!("AuthenticationMethods list `{shown}` logs in without keyboard-interactive (the SMS code)")
                },
            )
            .fix(
                "`AuthenticationMethods keyboard-interactive` (password + code) or \
                 `AuthenticationMethods publickey,keyboard-interactive` (key + code); exempt accounts \
                 explicitly in a `Match User` block",
            ),
        );
    }
    if yes(conf, "passwordauthentication") {
        out.push(
            Finding::new(
                "sshd.password",
                Severity::Warning,
                subject,
                "PasswordAuthentication yes: sshd's own password method answers every PAM prompt with the \
                 password, so it can never pass the code step but still triggers an SMS per attempt",
            )
            .fix("`PasswordAuthentication no` (passwords still work through keyboard-interactive)"),
        );
    }
    if let Some(grace) = conf
        .get("logingracetime")
        .and_then(|g| g.parse::<u64>().ok())
    {
        if grace > 0 && grace < 60 {
            out.push(
                Finding::new(
                    "sshd.logingracetime",
                    Severity::Warning,
                    subject,
                    format!("LoginGraceTime {grace} s leaves little time for an SMS to arrive and be typed"),
                )
                .fix("`LoginGraceTime 120` (or more)"),
            );
        }
    }
    if !bad {
        out.push(Finding::new(
            "sshd.ok",
            Severity::Ok,
            subject,
            format!("UsePAM yes, keyboard-interactive on, every AuthenticationMethods list needs it ({methods})"),
        ));
    }
    if !matched {
        out.push(Finding::new(
            "sshd.match",
            Severity::Info,
            subject,
            "Match blocks were not evaluated; check a user with --sshd-match user=NAME,host=H,addr=A",
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(extra: &str) -> HashMap<String, String> {
        let mut base = "usepam yes\nkbdinteractiveauthentication yes\npubkeyauthentication yes\n\
                        passwordauthentication no\nauthenticationmethods keyboard-interactive\n"
            .to_string();
        base.push_str(extra);
        parse(&base)
    }

    fn errors(c: &HashMap<String, String>) -> Vec<&'static str> {
        evaluate(c, "sshd", true)
            .into_iter()
            .filter(|f| f.severity == Severity::Error)
            .map(|f| f.check)
            .collect()
    }

    #[test]
    fn good_configs() {
        assert!(errors(&conf("")).is_empty());
        let mut c = conf("");
        c.insert(
            "authenticationmethods".into(),
            "publickey,keyboard-interactive:pam".into(),
        );
        assert!(errors(&c).is_empty());
    }

    #[test]
    fn bad_configs() {
        let mut c = conf("");
        c.insert("usepam".into(), "no".into());
        assert_eq!(errors(&c), vec!["sshd.usepam"]);
        let mut c = conf("");
        c.insert("kbdinteractiveauthentication".into(), "no".into());
        assert!(errors(&c).contains(&"sshd.kbdinteractive"));
        let mut c = conf("");
        c.insert("authenticationmethods".into(), "any".into());
        assert_eq!(errors(&c), vec!["sshd.publickey-alone"]);
        let mut c = conf("");
        c.insert(
            "authenticationmethods".into(),
            "publickey,keyboard-interactive publickey".into(),
        );
        assert_eq!(errors(&c), vec!["sshd.publickey-alone"]);
        // A list naming a disabled method cannot be satisfied: no finding.
        let mut c = conf("");
        c.insert(
            "authenticationmethods".into(),
            "keyboard-interactive password".into(),
        );
        assert!(errors(&c).is_empty());
    }
}
