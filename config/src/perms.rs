//! Who may change, and for secrets read, the files smsotpd trusts: the
//! config, the users file, credential and CA files, the outbox and the
//! store. One rule for all of them, used by the daemon wherever it opens
//! one (start, `--check-config`, SIGHUP, each outbox append, the store's
//! open) and by `smsotpctl doctor`:
//!
//! - the file and every directory on the way to it are owned by root (or
//!   by the uid the daemon runs as, for test and development runs);
//! - none of them is writable by group or others. A root-owned sticky
//!   directory (`/tmp`) is accepted on the way, because the sticky bit
//!   stops others from renaming or removing the entry below it, whose
//!   owner is checked in turn; it is refused as the directory holding the
//!   file itself, where anyone could create the name first (a missing
//!   outbox, the store's `-wal` and `-shm` files);
//! - credential files and the outbox (live codes) are not readable by
//!   group or others either;
//! - symbolic links are followed, and the directory holding each link is
//!   checked like any other (whoever can write it can repoint the link),
//!   then the target's own path. Only files the daemon writes (outbox,
//!   store) must not be links: root writing through a planted link
//!   clobbers another file.
//!
//! What does not exist yet passes: the daemon creates it with its own
//! modes, and a reader reports a missing file better than this check.

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

/// What a file is to the daemon: how private it must be, whether the
/// daemon writes it, and what a stranger could do with it (for messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Config,
    Users,
    /// A `*_file` credential or a systemd credential.
    Secret,
    CaFile,
    Outbox,
    /// The SQLite database; its directory also gets `-wal` and `-shm`.
    Store,
}

impl Role {
    fn secret(self) -> bool {
        matches!(self, Role::Secret | Role::Outbox)
    }

    fn written_by_daemon(self) -> bool {
        matches!(self, Role::Outbox | Role::Store)
    }

    /// What whoever can write the file could do.
    fn harm(self) -> &'static str {
        match self {
            Role::Config => "change the daemon's settings (its providers, users file and policy)",
            Role::Users => "change a user's number",
            Role::Secret => "replace a provider credential",
            Role::CaFile => "make the daemon trust their own certificate for the SMS gateway or the state database",
            Role::Outbox => "change or remove the login codes written to it",
            Role::Store => "reset lockouts and send budgets, or add backup codes",
        }
    }

    /// What whoever can read the file could learn.
    fn leak(self) -> &'static str {
        match self {
            Role::Outbox => "read the login codes in it",
            _ => "read the credential in it",
        }
    }
}

/// Who besides the owner has some access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    /// By name where NSS knows it, else `gid N`.
    Group(String),
    Everyone,
}

impl Who {
    fn anyone(&self) -> &'static str {
        match self {
            Who::Group(_) => "anyone in that group",
            Who::Everyone => "any local user",
        }
    }
}

impl fmt::Display for Who {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Who::Group(g) => write!(f, "group {g}"),
            Who::Everyone => f.write_str("everyone"),
        }
    }
}

/// Who besides the owner can read a file of this mode and group.
pub fn readers(mode: u32, gid: u32) -> Option<Who> {
    others(mode, gid, 0o004, 0o040)
}

fn writers(mode: u32, gid: u32) -> Option<Who> {
    others(mode, gid, 0o002, 0o020)
}

fn others(mode: u32, gid: u32, other_bit: u32, group_bit: u32) -> Option<Who> {
    if mode & other_bit != 0 {
        Some(Who::Everyone)
    } else if mode & group_bit != 0 {
        Some(Who::Group(group_name(gid)))
    } else {
        None
    }
}

fn group_name(gid: u32) -> String {
    match nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid)) {
        Ok(Some(g)) => g.name,
        _ => format!("gid {gid}"),
    }
}

fn user_name(uid: u32) -> String {
    match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
        Ok(Some(u)) => format!("uid {uid} ({})", u.name),
        _ => format!("uid {uid}"),
    }
}

/// Where on the path the problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// The file (after following links).
    File,
    /// The directory holding the file's (or its link's) name.
    Holder,
    /// A directory further up.
    Above,
}

impl Place {
    /// For an entry on the walk, with `left` names still to walk below it.
    fn of(left: usize) -> Place {
        match left {
            0 => Place::File,
            1 => Place::Holder,
            _ => Place::Above,
        }
    }
}

#[derive(Debug)]
enum Problem {
    Owner { uid: u32 },
    Writable { who: Who, mode: u32 },
    Readable { who: Who, mode: u32 },
    Symlink,
    TooManyLinks,
    Io(io::Error),
}

/// A file the daemon will not trust, with the fix. Displays as one
/// sentence naming the file (or the directory at fault), the problem and
/// the command that fixes it.
#[derive(Debug, thiserror::Error)]
pub struct PermError {
    /// The file that was checked.
    pub file: PathBuf,
    /// Where the problem is: the file, or a directory on the way to it.
    pub at: PathBuf,
    place: Place,
    role: Role,
    trusted: u32,
    problem: Problem,
}

impl fmt::Display for PermError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}. Fix: {}", self.problem(), self.fix())
    }
}

impl PermError {
    /// The command that fixes it, as the message ends with it.
    pub fn fix(&self) -> String {
        let at = self.at.display();
        match &self.problem {
            Problem::Owner { .. } => format!("chown root:root {at}"),
            Problem::Writable { .. } | Problem::Readable { .. }
                if self.place == Place::File && self.role.secret() =>
            {
                format!("chmod go-rwx {at}")
            }
            Problem::Writable { .. } | Problem::Readable { .. } => format!("chmod go-w {at}"),
            Problem::Symlink => format!(
                "point the config at the file itself ({}), not at a link",
                std::fs::canonicalize(&self.at)
                    .unwrap_or_else(|_| self.at.clone())
                    .display()
            ),
            Problem::TooManyLinks | Problem::Io(_) => format!("check {at} and the links to it"),
        }
    }

    /// The message without its fix (`smsotpctl doctor` shows the fix on a
    /// line of its own).
    pub fn problem(&self) -> String {
        let harm = self.role.harm();
        // The file itself, or a directory: then whoever controls it can
        // swap the file for their own.
        let (at, file) = (self.at.display(), self.file.display());
        let (subject, via) = match self.place {
            Place::File => (at.to_string(), ""),
            Place::Holder => (
                format!("{at}, the directory holding {file},"),
                "replace the file and ",
            ),
            Place::Above => (
                format!("{at}, a directory above {file},"),
                "replace what it holds and ",
            ),
        };
        match &self.problem {
            Problem::Owner { uid } => {
                let allowed = if self.trusted == 0 {
                    "root".to_string()
                } else {
                    format!("root or uid {} (smsotpd's own)", self.trusted)
                };
                format!(
                    "{subject} is owned by {}, not {allowed}: that user could {via}{harm}",
                    user_name(*uid)
                )
            }
            Problem::Writable { who, mode } => format!(
                "{subject} is writable by {who} (mode {mode:04o}): {} could {via}{harm}",
                who.anyone()
            ),
            Problem::Readable { who, mode } => format!(
                "{subject} is readable by {who} (mode {mode:04o}): {} could {}",
                who.anyone(),
                self.role.leak()
            ),
            Problem::Symlink => format!(
                "{subject} is a symbolic link: smsotpd writes this file as root and does \
                 not follow links there (one planted there would make it overwrite another file)"
            ),
            Problem::TooManyLinks => format!("{subject}: too many levels of symbolic links"),
            Problem::Io(e) => format!("cannot check the permissions of {subject}: {e}"),
        }
    }
}

/// Linux's own limit on links followed in one path (`ELOOP`).
const MAX_LINKS: usize = 40;

/// Checks `file` for `role` with the daemon's own uid trusted besides root.
pub fn check(file: &Path, role: Role) -> Result<(), PermError> {
    check_trusting(file, role, nix::unistd::geteuid().as_raw())
}

/// [`check`], trusting `trusted` (besides root) as an owner.
pub fn check_trusting(file: &Path, role: Role, trusted: u32) -> Result<(), PermError> {
    let absolute = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
    let fail = |at: &Path, left: usize, problem| PermError {
        file: absolute.clone(),
        at: at.to_path_buf(),
        place: Place::of(left),
        role,
        trusted,
        problem,
    };
    // Names still to walk, next last; `at` is the real directory reached
    // so far, already checked.
    let mut todo: Vec<OsString> = Vec::new();
    push_components(&mut todo, &absolute);
    let mut at = PathBuf::from("/");
    let mut links = 0;
    let root = std::fs::metadata(&at).map_err(|e| fail(&at, todo.len(), Problem::Io(e)))?;
    check_dir(&at, &root, todo.len(), trusted).map_err(|p| fail(&at, todo.len(), p))?;
    while let Some(name) = todo.pop() {
        if name == ".." {
            at.pop();
            continue;
        }
        let entry = at.join(&name);
        let left = todo.len();
        let meta = match std::fs::symlink_metadata(&entry) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(fail(&entry, left, Problem::Io(e))),
        };
        if meta.uid() != 0 && meta.uid() != trusted {
            return Err(fail(&entry, left, Problem::Owner { uid: meta.uid() }));
        }
        if meta.file_type().is_symlink() {
            if left == 0 && role.written_by_daemon() {
                return Err(fail(&entry, left, Problem::Symlink));
            }
            links += 1;
            if links > MAX_LINKS {
                return Err(fail(&entry, left, Problem::TooManyLinks));
            }
            let target =
                std::fs::read_link(&entry).map_err(|e| fail(&entry, left, Problem::Io(e)))?;
            if target.is_absolute() {
                at = PathBuf::from("/");
            }
            push_components(&mut todo, &target);
            continue;
        }
        if left == 0 {
            return check_file(&meta, role).map_err(|p| fail(&entry, left, p));
        }
        if !meta.is_dir() {
            // Opening it will fail with ENOTDIR, which says it better.
            return Ok(());
        }
        check_dir(&entry, &meta, left, trusted).map_err(|p| fail(&entry, left, p))?;
        at = entry;
    }
    Ok(())
}

/// Pushes `path`'s components so that the first is popped first; `/` and
/// `.` are dropped (the walk tracks the directory itself).
fn push_components(todo: &mut Vec<OsString>, path: &Path) {
    let names: Vec<OsString> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect();
    todo.extend(names.into_iter().rev());
}

/// A directory on the way, with `left` names still to walk below it: its
/// owner was checked by the caller (or it is `/`).
fn check_dir(
    dir: &Path,
    meta: &std::fs::Metadata,
    left: usize,
    trusted: u32,
) -> Result<(), Problem> {
    if dir == Path::new("/") && meta.uid() != 0 && meta.uid() != trusted {
        return Err(Problem::Owner { uid: meta.uid() });
    }
    let mode = meta.mode() & 0o7777;
    let sticky = mode & 0o1000 != 0;
    match writers(mode, meta.gid()) {
        Some(_) if sticky && Place::of(left) == Place::Above => Ok(()),
        Some(who) => Err(Problem::Writable { who, mode }),
        None => Ok(()),
    }
}

fn check_file(meta: &std::fs::Metadata, role: Role) -> Result<(), Problem> {
    let mode = meta.mode() & 0o7777;
    if let Some(who) = writers(mode, meta.gid()) {
        return Err(Problem::Writable { who, mode });
    }
    if role.secret() {
        if let Some(who) = readers(mode, meta.gid()) {
            return Err(Problem::Readable { who, mode });
        }
    }
    Ok(())
}

/// The files a loaded configuration names that the daemon refuses to
/// believe when someone else could change them: the users file and the
/// SQLite store (providers check their own secrets, CA files and outbox
/// when they are built). One list for `smsotpd` at start and reload and
/// for `smsotpctl check-config`, so the two never disagree.
pub fn check_named_files(config: &crate::DaemonConfig) -> Result<(), PermError> {
    check(&config.users_file, Role::Users)?;
    if config.store.backend == crate::StoreBackend::Sqlite {
        check(&config.store.path, Role::Store)?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "perms/tests.rs"]
mod tests;
