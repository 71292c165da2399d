//! The rule on real files in a temp dir under /tmp (a root-owned sticky
//! directory, as on every test machine). The owner cases chown, so they
//! need root, as the whole suite does.

use super::*;
use std::fs;
use std::os::unix::fs::{chown, symlink, PermissionsExt};

const NOBODY: u32 = 65534;
/// Debian's `staff`; the message names a group by its name.
const STAFF: u32 = 50;

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

fn file(dir: &Path, name: &str, mode: u32) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, "x\n").unwrap();
    chmod(&p, mode);
    p
}

fn err(p: &Path, role: Role) -> String {
    check_trusting(p, role, 0)
        .expect_err("should be refused")
        .to_string()
}

#[test]
fn private_files_pass_and_missing_ones_too() {
    let dir = tempfile::tempdir().unwrap();
    let users = file(dir.path(), "users.toml", 0o644);
    check_trusting(&users, Role::Users, 0).unwrap();
    let token = file(dir.path(), "token", 0o600);
    check_trusting(&token, Role::Secret, 0).unwrap();
    // Created later by the daemon with its own modes.
    check_trusting(&dir.path().join("state.db"), Role::Store, 0).unwrap();
    check_trusting(&dir.path().join("no/such/outbox"), Role::Outbox, 0).unwrap();
}

#[test]
fn group_writable_users_file_names_group_mode_harm_and_fix() {
    if !is_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let users = file(dir.path(), "users.toml", 0o664);
    chown(&users, Some(0), Some(STAFF)).unwrap();
    let p = users.display();
    assert_eq!(
        err(&users, Role::Users),
        format!(
            "{p} is writable by group staff (mode 0664): anyone in that group could change \
             a user's number. Fix: chmod go-w {p}"
        )
    );
    chmod(&users, 0o646);
    assert!(err(&users, Role::Users).contains("writable by everyone (mode 0646): any local user"));
}

#[test]
fn secrets_and_the_outbox_must_not_be_readable() {
    let dir = tempfile::tempdir().unwrap();
    let token = file(dir.path(), "token", 0o604);
    let p = token.display();
    assert_eq!(
        err(&token, Role::Secret),
        format!(
            "{p} is readable by everyone (mode 0604): any local user could read the credential \
             in it. Fix: chmod go-rwx {p}"
        )
    );
    chmod(&token, 0o640);
    let e = err(&token, Role::Secret);
    assert!(e.contains("readable by group root (mode 0640)"), "{e}");
    let outbox = file(dir.path(), "outbox.jsonl", 0o644);
    assert!(err(&outbox, Role::Outbox).contains("could read the login codes in it"));
    // Not secret: readable is fine.
    check_trusting(&outbox, Role::CaFile, 0).unwrap();
}

#[test]
fn strangers_may_not_own_the_file_or_a_directory_on_the_way() {
    if !is_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    fs::create_dir(&store_dir).unwrap();
    chmod(&store_dir, 0o700);
    chown(&store_dir, Some(NOBODY), Some(NOBODY)).unwrap();
    let db = store_dir.join("state.db");
    let d = store_dir.display();
    assert_eq!(
        err(&db, Role::Store),
        format!(
            "{d}, the directory holding {}, is owned by uid 65534 (nobody), not root: that \
             user could replace the file and reset lockouts and send budgets, or add backup \
             codes. Fix: chown root:root {d}",
            db.display()
        )
    );
    // The daemon's own uid is trusted (test and development runs).
    check_trusting(&db, Role::Store, NOBODY).unwrap();
    let e = check_trusting(&db, Role::Store, 1000)
        .unwrap_err()
        .to_string();
    assert!(e.contains("not root or uid 1000 (smsotpd's own)"), "{e}");

    let users = file(dir.path(), "users.toml", 0o644);
    chown(&users, Some(NOBODY), None).unwrap();
    assert!(err(&users, Role::Users).starts_with(&format!(
        "{} is owned by uid 65534 (nobody), not root: that user could change a user's number",
        users.display()
    )));
}

#[test]
fn open_directories_are_refused_a_sticky_one_only_above_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let etc = dir.path().join("etc");
    fs::create_dir(&etc).unwrap();
    let users = file(&etc, "users.toml", 0o644);
    chmod(&etc, 0o775);
    let e = err(&users, Role::Users);
    assert!(
        e.starts_with(&format!(
            "{}, the directory holding {}, is writable by group root (mode 0775)",
            etc.display(),
            users.display()
        )),
        "{e}"
    );
    assert!(
        e.ends_with(&format!("Fix: chmod go-w {}", etc.display())),
        "{e}"
    );
    // Anyone may create names in a sticky directory: not as the holder.
    chmod(&etc, 0o1777);
    assert!(err(&users, Role::Users).contains("is writable by everyone (mode 1777)"));
    // Further up, the sticky bit protects the entry below, whose owner
    // is checked (this is /tmp for every test).
    chmod(&etc, 0o755);
    chmod(dir.path(), 0o1777);
    check_trusting(&users, Role::Users, 0).unwrap();
    chmod(dir.path(), 0o777);
    assert!(err(&users, Role::Users).contains(&format!(
        "{}, a directory above {}, is writable by everyone (mode 0777)",
        dir.path().display(),
        users.display()
    )));
    chmod(dir.path(), 0o700);
}

#[test]
fn links_are_followed_and_their_directories_checked() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real");
    let open = dir.path().join("open");
    fs::create_dir(&real).unwrap();
    fs::create_dir(&open).unwrap();
    let users = file(&real, "users.toml", 0o644);
    let link = dir.path().join("users-link.toml");
    symlink("real/../real/users.toml", &link).unwrap();
    check_trusting(&link, Role::Users, 0).unwrap();
    // The target's directory is checked...
    chmod(&real, 0o777);
    let e = err(&link, Role::Users);
    assert!(
        e.starts_with(&format!("{}, a directory above", real.display())),
        "{e}"
    );
    chmod(&real, 0o755);
    // ... and so is the one holding the link (its writer could repoint it).
    let open_link = open.join("users.toml");
    symlink(&users, &open_link).unwrap();
    chmod(&open, 0o1777);
    assert!(err(&open_link, Role::Users).contains(&format!(
        "{}, the directory holding {}, is writable by everyone",
        open.display(),
        open_link.display()
    )));
    // Files the daemon writes must not be links at all.
    let e = err(&link, Role::Outbox);
    assert!(
        e.contains("is a symbolic link: smsotpd writes this file as root"),
        "{e}"
    );
    assert!(e.contains(&format!(
        "Fix: point the config at the file itself ({})",
        users.display()
    )));
    let a = dir.path().join("a");
    symlink("b", &a).unwrap();
    symlink("a", dir.path().join("b")).unwrap();
    assert!(err(&a, Role::Users).contains("too many levels of symbolic links"));
}
