//! The `outbox` provider: appends each message as one JSON line to a local
//! file. It is the default when no provider is configured, so a fresh
//! install works (an admin reads codes from the file) and tests have a
//! provider with no network.
//!
//! The file holds live login codes, so it is created 0600, one that
//! others could read or change is refused (checked when the provider is
//! built and before every append: [`smsotp_config::perms`]), and a partial
//! line is never left behind: a reader (`tail -f`, a test) sees whole
//! lines only.

use super::{ProviderError, Receipt, SendFuture, Sms, SmsProvider};
use serde::Serialize;
use smsotp_config::perms::{self, PermError, Role};
use smsotp_config::OutboxConfig;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio::sync::Mutex;
use zeroize::Zeroizing;

#[derive(Debug)]
pub struct Outbox {
    name: String,
    path: PathBuf,
    /// Serialises appends so two sends never interleave their bytes. It is
    /// an `Arc` so the owned guard can travel into the blocking task: if the
    /// caller's future is dropped mid-write (a timeout), the lock is still
    /// held until the write has really finished.
    lock: Arc<Mutex<()>>,
}

/// One line of the outbox. Field order is the documented one.
#[derive(Serialize)]
struct Line<'a> {
    to: &'a str,
    body: &'a str,
    at: &'a str,
}

impl Outbox {
    /// Refuses an outbox (or its directory) that others could read or
    /// change, so the daemon does not start, or a reload keeps the old
    /// configuration, instead of every send failing later.
    pub fn new(cfg: &OutboxConfig) -> Result<Self, ProviderError> {
        perms::check(&cfg.path, Role::Outbox).map_err(|e| ProviderError::Config(e.to_string()))?;
        Ok(Outbox {
            name: cfg.name.clone(),
            path: cfg.path.clone(),
            lock: Arc::new(Mutex::new(())),
        })
    }

    async fn append(&self, sms: &Sms) -> Result<Receipt, ProviderError> {
        let at = OffsetDateTime::now_utc()
            .format(&Rfc3339)
            .map_err(|e| ProviderError::Permanent(format!("cannot format the time: {e}")))?;
        let line = Line {
            to: sms.to.e164(),
            body: &sms.body,
            at: &at,
        };
        // The line holds the code: keep it in a buffer that is wiped on drop.
        let mut text =
            Zeroizing::new(serde_json::to_string(&line).map_err(|e| {
                ProviderError::Permanent(format!("cannot encode the message: {e}"))
            })?);
        text.push('\n');

        let guard = self.lock.clone().lock_owned().await;
        let path = self.path.clone();
        // spawn_blocking with std::fs rather than tokio::fs: tokio::fs runs
        // every call (open, write, fsync, stat) as its own blocking task and
        // buffers writes behind our back; one closure does open + one
        // write(2) + fdatasync in a single hop, with plain syscall
        // semantics and errors that surface where they happen.
        let result = tokio::task::spawn_blocking(move || {
            let r = append_line(&path, text.as_bytes());
            drop(guard);
            r
        })
        .await;
        match result {
            Ok(Ok(())) => Ok(Receipt {
                id: None,
                detail: format!("appended to {}", self.path.display()),
            }),
            Ok(Err(e)) => Err(classify(&self.path, e)),
            Err(e) => Err(ProviderError::Retryable(format!(
                "outbox {}: writer task failed: {e}",
                self.path.display()
            ))),
        }
    }
}

impl SmsProvider for Outbox {
    fn name(&self) -> &str {
        &self.name
    }

    fn send<'a>(&'a self, sms: &'a Sms, _meta: &'a super::SendMeta) -> SendFuture<'a> {
        Box::pin(self.append(sms))
    }
}

/// What went wrong, before it is turned into a message naming the path.
enum AppendError {
    /// Someone else could read or change it (it may have been opened up
    /// since the daemon started).
    Perms(PermError),
    Open(io::Error),
    NotRegular,
    Write(io::Error),
    Sync(io::Error),
}

fn append_line(path: &Path, line: &[u8]) -> Result<(), AppendError> {
    perms::check(path, Role::Outbox).map_err(AppendError::Perms)?;
    let mut file = OpenOptions::new()
        .append(true)
        .create(true)
        // Applies only when the file is created; an existing file keeps its
        // mode, so we never widen what an admin has set.
        .mode(0o600)
        // O_NOFOLLOW: the daemon may run as root; a symlink planted at the
        // outbox path must not turn an append into a write elsewhere.
        // O_NONBLOCK: if the path is a FIFO with no reader, open fails
        // instead of hanging a blocking thread forever (no effect on
        // regular files).
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(AppendError::Open)?;
    let meta = file.metadata().map_err(AppendError::Open)?;
    if !meta.file_type().is_file() {
        return Err(AppendError::NotRegular);
    }
    let before = meta.len();
    if let Err(e) = file.write_all(line) {
        // A short write (disk full) would leave half a line that the next
        // append glues onto. We hold the only writer lock in this process,
        // so cutting back to the old length removes exactly our bytes.
        let _ = file.set_len(before);
        return Err(AppendError::Write(e));
    }
    // The code must be on disk before the user is told it was sent.
    file.sync_data().map_err(AppendError::Sync)?;
    Ok(())
}

/// Problems an admin must fix (missing directory, permissions, a symlink)
/// are permanent; ones that may clear up on their own (disk full, I/O
/// errors) are retryable.
fn classify(path: &Path, e: AppendError) -> ProviderError {
    let p = path.display();
    let (what, err) = match e {
        AppendError::NotRegular => {
            return ProviderError::Permanent(format!("outbox {p}: is not a regular file"));
        }
        AppendError::Perms(e) => return ProviderError::Permanent(format!("outbox: {e}")),
        AppendError::Open(e) => ("cannot open", e),
        AppendError::Write(e) => ("cannot write", e),
        AppendError::Sync(e) => ("cannot sync", e),
    };
    let hint = match err.raw_os_error() {
        Some(libc::ENOENT) => " (does its directory exist?)",
        Some(libc::ELOOP) => " (it is a symbolic link, which is refused)",
        Some(libc::ENXIO) => " (it is a FIFO with no reader)",
        _ => "",
    };
    let msg = format!("outbox {p}: {what}: {err}{hint}");
    match err.raw_os_error() {
        Some(
            libc::ENOENT
            | libc::EACCES
            | libc::EPERM
            | libc::ELOOP
            | libc::EISDIR
            | libc::ENOTDIR
            | libc::EROFS
            | libc::ENXIO,
        ) => ProviderError::Permanent(msg),
        _ => ProviderError::Retryable(msg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smsotp_config::{Mobile, ProviderConfig};
    use std::os::unix::fs::PermissionsExt;

    fn outbox_at(path: &Path) -> Outbox {
        let toml = format!(
            "[[provider]]\ntype = \"outbox\"\nname = \"box\"\npath = '{}'\n",
            path.display()
        );
        let cfg = smsotp_config::parse(Path::new("t.toml"), &toml).unwrap();
        match &cfg.providers[0] {
            ProviderConfig::Outbox(c) => Outbox::new(c).unwrap(),
            other => panic!("expected outbox, got {other:?}"),
        }
    }

    fn read_lines(path: &Path) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(path).unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn sms(to: &str, body: &str) -> Sms {
        Sms {
            to: Mobile::parse(to).unwrap(),
            body: Zeroizing::new(body.to_string()),
        }
    }

    #[tokio::test]
    async fn creates_file_0600_and_writes_json_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.jsonl");
        let ob = outbox_at(&path);
        assert_eq!(ob.name(), "box");
        let body = "Code 123456 \"quoted\" \\ back\nslash ✓";
        let r = ob
            .send(&sms("+15551234567", body), &Default::default())
            .await
            .unwrap();
        assert!(r.detail.contains("outbox.jsonl"), "{}", r.detail);
        ob.send(&sms("+4915112345678", "second"), &Default::default())
            .await
            .unwrap();

        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        let lines = read_lines(&path);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["to"], "+15551234567");
        assert_eq!(lines[0]["body"], body);
        // RFC 3339 in UTC: `2024-05-01T12:34:56.123456789Z` (the daemon's
        // `time` has no parsing feature, so the shape is checked by hand).
        let at = lines[0]["at"].as_str().unwrap();
        let b = at.as_bytes();
        assert!(at.ends_with('Z'), "{at}");
        assert!(at.len() >= 20, "{at}");
        for (i, c) in [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')] {
            assert_eq!(b[i], c, "{at}");
        }
        let year: i32 = at[..4].parse().unwrap();
        assert_eq!(year, OffsetDateTime::now_utc().year());
        assert_eq!(lines[1]["to"], "+4915112345678");
        // Key order is the documented one.
        let raw = std::fs::read_to_string(&path).unwrap();
        assert!(raw.starts_with("{\"to\":"), "{raw}");
    }

    #[tokio::test]
    async fn existing_file_mode_is_not_widened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.jsonl");
        std::fs::write(&path, "").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400 | 0o200)).unwrap();
        let ob = outbox_at(&path);
        ob.send(&sms("+15551234567", "x"), &Default::default())
            .await
            .unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[tokio::test]
    async fn concurrent_sends_never_interleave() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.jsonl");
        let ob = Arc::new(outbox_at(&path));
        // Long bodies make a torn write easy to see if locking were wrong.
        let mut tasks = Vec::new();
        for i in 0..50 {
            let ob = ob.clone();
            tasks.push(tokio::spawn(async move {
                let body = format!("{i:02}:{}", "x".repeat(4000));
                ob.send(&sms("+15551234567", &body), &Default::default())
                    .await
                    .unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let lines = read_lines(&path);
        assert_eq!(lines.len(), 50);
        let mut seen: Vec<u32> = lines
            .iter()
            .map(|l| {
                let b = l["body"].as_str().unwrap();
                assert_eq!(b.len(), 4003);
                b[..2].parse().unwrap()
            })
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..50).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn missing_directory_is_permanent_and_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope").join("outbox.jsonl");
        let ob = outbox_at(&path);
        match ob
            .send(&sms("+15551234567", "secret-code-42"), &Default::default())
            .await
        {
            Err(ProviderError::Permanent(m)) => {
                assert!(m.contains(&path.display().to_string()), "{m}");
                assert!(m.contains("directory"), "{m}");
                assert!(!m.contains("secret-code-42"), "{m}");
            }
            other => panic!("expected Permanent, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn symlink_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, "").unwrap();
        let path = dir.path().join("outbox.jsonl");
        // Built while the path is free; the link is planted afterwards.
        let ob = outbox_at(&path);
        std::os::unix::fs::symlink(&target, &path).unwrap();
        match ob
            .send(&sms("+15551234567", "x"), &Default::default())
            .await
        {
            Err(ProviderError::Permanent(m)) => assert!(m.contains("symbolic link"), "{m}"),
            other => panic!("expected Permanent, got {other:?}"),
        }
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "");
    }

    #[tokio::test]
    async fn an_outbox_others_can_read_is_refused_at_build_and_at_append() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.jsonl");
        std::fs::write(&path, "").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let cfg = OutboxConfig {
            name: "box".into(),
            path: path.clone(),
        };
        let e = Outbox::new(&cfg).unwrap_err().to_string();
        assert!(
            e.contains("is readable by group root (mode 0640): anyone in that group could read the login codes in it"),
            "{e}"
        );
        // Opened up after the daemon started: the next code is not written.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let ob = Outbox::new(&cfg).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o604)).unwrap();
        match ob
            .send(&sms("+15551234567", "code 918273"), &Default::default())
            .await
        {
            Err(ProviderError::Permanent(m)) => assert!(m.contains("readable by everyone"), "{m}"),
            other => panic!("expected Permanent, got {other:?}"),
        }
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
    }

    #[tokio::test]
    async fn directory_as_path_is_permanent() {
        let dir = tempfile::tempdir().unwrap();
        // Not the temp dir itself: /tmp, which holds it, is open to all.
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o700)).unwrap();
        let ob = outbox_at(&sub);
        assert!(matches!(
            ob.send(&sms("+15551234567", "x"), &Default::default())
                .await,
            Err(ProviderError::Permanent(_))
        ));
    }

    #[tokio::test]
    async fn unwritable_directory_is_permanent() {
        // Root ignores directory permissions, so this only means something
        // as an ordinary user.
        if unsafe { libc::geteuid() } == 0 {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("ro");
        std::fs::create_dir(&sub).unwrap();
        std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o500)).unwrap();
        let path = sub.join("outbox.jsonl");
        let ob = outbox_at(&path);
        let r = ob
            .send(&sms("+15551234567", "x"), &Default::default())
            .await;
        std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o700)).unwrap();
        match r {
            Err(ProviderError::Permanent(m)) => assert!(m.contains("ro/outbox.jsonl"), "{m}"),
            other => panic!("expected Permanent, got {other:?}"),
        }
    }

    #[test]
    fn disk_full_is_retryable() {
        let e = classify(
            Path::new("/x/outbox.jsonl"),
            AppendError::Write(io::Error::from_raw_os_error(libc::ENOSPC)),
        );
        match e {
            ProviderError::Retryable(m) => assert!(m.contains("/x/outbox.jsonl"), "{m}"),
            other => panic!("expected Retryable, got {other:?}"),
        }
    }
}
