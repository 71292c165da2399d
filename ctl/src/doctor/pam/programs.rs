//! Is the program behind a PAM service installed on the checked host? A
//! missing /etc/pam.d/SERVICE is a hole only then: libpam runs `other` for
//! a program that asks for SERVICE, while for one that is not there nothing
//! logs in through it (a minimal server without sudo, a container without
//! sshd).

use crate::doctor::Host;
use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

/// The services whose program doctor knows, and where their packages put
/// it: Debian and RHEL, with and without the merged /usr (`/bin` a link to
/// `usr/bin`), Arch (`/usr/bin/sshd`), sudo-rs beside or instead of sudo.
const PROGRAMS: &[(&[&str], &[&str])] = &[
    (
        &["sshd"],
        &["/usr/sbin/sshd", "/usr/bin/sshd", "/sbin/sshd"],
    ),
    (
        &["sudo", "sudo-i"],
        &["/usr/bin/sudo", "/bin/sudo", "/usr/bin/sudo-rs"],
    ),
    (&["login"], &["/bin/login", "/usr/bin/login"]),
    (&["su", "su-l"], &["/bin/su", "/usr/bin/su"]),
    (
        &["runuser", "runuser-l"],
        &["/sbin/runuser", "/usr/sbin/runuser", "/usr/bin/runuser"],
    ),
    (&["doas"], &["/usr/bin/doas", "/usr/local/bin/doas"]),
    (&["passwd"], &["/usr/bin/passwd", "/bin/passwd"]),
    (&["cron"], &["/usr/sbin/cron"]),
    (&["crond"], &["/usr/sbin/crond"]),
];

/// What doctor found out about the program behind a service.
#[derive(Debug, PartialEq, Eq)]
pub enum Program {
    /// This executable (as the checked host names it) is there.
    Installed(&'static str),
    /// None of these is there.
    Absent(&'static [&'static str]),
    /// Doctor does not know which program uses the service (it was named
    /// with `--service`): assume one does.
    Unknown,
}

pub fn program(host: &Host, service: &str) -> Program {
    let Some((_, paths)) = PROGRAMS.iter().find(|(names, _)| names.contains(&service)) else {
        return Program::Unknown;
    };
    paths
        .iter()
        .copied()
        .find(|p| is_executable(host, Path::new(p)))
        .map_or(Program::Absent(paths), Program::Installed)
}

/// A regular file with an execute bit, after following its links.
fn is_executable(host: &Host, path: &Path) -> bool {
    resolve(host, path)
        .and_then(|p| std::fs::metadata(p).ok())
        .is_some_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Links followed on the way before giving up (the kernel's own limit).
const MAX_LINKS: usize = 40;

/// Where the host's absolute `path` is on this machine, with every link on
/// the way followed inside the `--root` directory: in an image,
/// /usr/bin/sudo -> /etc/alternatives/sudo means the image's alternatives,
/// not this machine's, and `..` stops at the image's `/`. None when a part
/// is missing or the links loop.
fn resolve(host: &Host, path: &Path) -> Option<PathBuf> {
    if host.is_real_root() {
        return Some(path.to_path_buf());
    }
    // Still to walk, the next one last; `..` as itself.
    let mut pending: Vec<OsString> = Vec::new();
    let push = |pending: &mut Vec<OsString>, p: &Path| {
        for c in p.components().rev() {
            match c {
                Component::Normal(name) => pending.push(name.to_os_string()),
                Component::ParentDir => pending.push("..".into()),
                Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            }
        }
    };
    push(&mut pending, path);
    // Walked so far, relative to the host's `/`.
    let mut at = PathBuf::new();
    let mut links = 0;
    while let Some(name) = pending.pop() {
        if name == ".." {
            at.pop();
            continue;
        }
        let next = at.join(&name);
        let here = host.path(&next);
        if !std::fs::symlink_metadata(&here).ok()?.is_symlink() {
            at = next;
            continue;
        }
        links += 1;
        if links > MAX_LINKS {
            return None;
        }
        let target = std::fs::read_link(&here).ok()?;
        if target.is_absolute() {
            at = PathBuf::new();
        }
        push(&mut pending, &target);
    }
    Some(host.path(&at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn executable(path: &Path, mode: u32) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"#!/bin/sh\n").unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn installed_absent_and_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let host = Host::new(Some(dir.path()));
        assert_eq!(
            program(&host, "sudo"),
            Program::Absent(&["/usr/bin/sudo", "/bin/sudo", "/usr/bin/sudo-rs"])
        );
        assert_eq!(program(&host, "my-app"), Program::Unknown);
        executable(&dir.path().join("usr/sbin/sshd"), 0o755);
        assert_eq!(program(&host, "sshd"), Program::Installed("/usr/sbin/sshd"));
        // Debian's sudo-i belongs to sudo; sudo-rs alone counts.
        executable(&dir.path().join("usr/bin/sudo-rs"), 0o755);
        assert_eq!(
            program(&host, "sudo-i"),
            Program::Installed("/usr/bin/sudo-rs")
        );
    }

    #[test]
    fn not_executable_or_a_directory_is_not_installed() {
        let dir = tempfile::tempdir().unwrap();
        let host = Host::new(Some(dir.path()));
        executable(&dir.path().join("bin/login"), 0o644);
        std::fs::create_dir_all(dir.path().join("usr/bin/login")).unwrap();
        assert!(matches!(program(&host, "login"), Program::Absent(_)));
    }

    #[test]
    fn links_are_followed_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        let host = Host::new(Some(r));
        // Merged /usr: /bin -> usr/bin.
        executable(&r.join("usr/bin/su"), 0o4755);
        symlink("usr/bin", r.join("bin")).unwrap();
        assert_eq!(program(&host, "su"), Program::Installed("/bin/su"));
        // An absolute link means the image's file, not this machine's
        // (/bin/sh exists here, not in the image).
        std::fs::create_dir_all(r.join("usr/sbin")).unwrap();
        symlink("/bin/sh", r.join("usr/sbin/cron")).unwrap();
        assert!(matches!(program(&host, "cron"), Program::Absent(_)));
        // alternatives: /usr/bin/doas -> /etc/alternatives/doas -> ../../opt/doas,
        // with `..` stopping at the image's `/`.
        executable(&r.join("opt/doas"), 0o755);
        std::fs::create_dir_all(r.join("etc/alternatives")).unwrap();
        symlink("../../../../../opt/doas", r.join("etc/alternatives/doas")).unwrap();
        symlink("/etc/alternatives/doas", r.join("usr/bin/doas")).unwrap();
        assert_eq!(program(&host, "doas"), Program::Installed("/usr/bin/doas"));
        // A loop is not a program.
        symlink("passwd", r.join("usr/bin/passwd")).unwrap();
        assert!(matches!(program(&host, "passwd"), Program::Absent(_)));
    }
}
