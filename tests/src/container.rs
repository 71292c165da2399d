//! A real systemd (PID 1 of a Debian 12 container) for the tests that need
//! one: the package's units, sandboxing, journald fields, dpkg scripts.
//!
//! The recipe is the one verified in TESTING.md ("A real systemd, booted in
//! systemd-nspawn"). A debootstrapped minbase root is built once and cached
//! under [`CACHE`]; every container boots an overlay of it (a private upper
//! directory), so tests never change the cache and can run side by side.
//! The overlay is mounted inside the nspawn process's own mount namespace,
//! so it vanishes with that process even if the test is killed; the cgroup
//! directories, the upper directory and the container itself are removed on
//! drop (also on panic).
//!
//! Nothing here touches the host's smsotp install: the container has its own
//! /etc, /run, /var and network namespace (`--private-network`).

use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Survives `cargo clean` and is shared by every checkout on the machine.
pub const CACHE: &str = "/var/cache/smsotp-test";
/// Bump when [`PACKAGES`] changes: a new name is a new cache.
const IMAGE: &str = "bookworm-minbase-v2";
/// Older images (other [`IMAGE`] names) are removed when a new one is built.
const IMAGE_PREFIX: &str = "bookworm-minbase-";
/// What the tests run inside, and the package's own dependencies (there is
/// no network to a mirror inside the container, so `dpkg -i` must find them
/// already installed). ca-certificates: the daemon's HTTP client loads the
/// system trust store. libpam0g-dev: scripts/demo.sh insists on it.
const PACKAGES: &str = "systemd,systemd-sysv,dbus,procps,libnss-systemd,\
    ca-certificates,pamtester,openssh-server,openssh-client,libpam-runtime,\
    libpam0g-dev";
/// Files whose absence means a broken (half-built or damaged) cache.
const MUST_EXIST: &[&str] = &[
    "usr/lib/systemd/systemd",
    "usr/bin/pamtester",
    "usr/sbin/sshd",
    "usr/bin/dpkg",
    "etc/ssl/certs/ca-certificates.crt",
];
const COMPLETE: &str = ".smsotp-image-complete";
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Why this machine cannot boot a container at all, if it cannot. Tests
/// skip loudly then, except on CI (`CI` set), where a skip would hide a gap.
pub fn unavailable() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    let reason = if unsafe { libc::geteuid() } != 0 {
        Some("not root".to_string())
    } else if !Path::new("/usr/bin/systemd-nspawn").exists() {
        Some("systemd-nspawn not installed (apt-get install systemd-container)".into())
    } else if !Path::new("/usr/sbin/debootstrap").exists() {
        Some("debootstrap not installed".into())
    } else if !Path::new("/sys/fs/cgroup/cgroup.procs").exists()
        && !Path::new("/sys/fs/cgroup/unified/cgroup.procs").exists()
    {
        Some("no cgroup v2 hierarchy".into())
    } else {
        None
    };
    if let (Some(why), Some(_)) = (&reason, std::env::var_os("CI")) {
        panic!("CI must run the systemd container tests, but: {why}");
    }
    reason
}

/// Prints the loud skip message and returns true when the test must skip.
pub fn skip(test: &str) -> bool {
    match unavailable() {
        Some(why) => {
            eprintln!("\n!!!! SKIPPED {test}: cannot boot a systemd container here: {why} !!!!\n");
            true
        }
        None => false,
    }
}

/// The cached root, built (or rebuilt when broken) under a lock so parallel
/// tests and checkouts build it once.
pub fn image() -> PathBuf {
    fs::create_dir_all(CACHE).expect("create the image cache");
    let lock = fs::File::create(Path::new(CACHE).join(".lock")).expect("lock file");
    // SAFETY: flock on a descriptor we own; released when `lock` drops.
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
    sweep_leftovers();
    let root = Path::new(CACHE).join(IMAGE);
    if !intact(&root) {
        build_image(&root);
    }
    root
}

/// What a killed test left (its container halted on its own, see
/// PR_SET_PDEATHSIG below): overlay directories and cgroups whose owning
/// test process is gone. Container names carry the owner's pid.
fn sweep_leftovers() {
    let owner_gone = |pid: Option<&str>| {
        pid.and_then(|p| p.trim().parse::<u32>().ok())
            .is_some_and(|p| !Path::new(&format!("/proc/{p}")).exists())
    };
    for run in fs::read_dir(CACHE).into_iter().flatten().flatten() {
        let owner = fs::read_to_string(run.path().join("owner")).ok();
        if run.file_name().to_string_lossy().starts_with("run-") && owner_gone(owner.as_deref()) {
            let _ = fs::remove_dir_all(run.path());
        }
    }
    for hierarchy in ["unified", "systemd"] {
        let slice = Path::new("/sys/fs/cgroup")
            .join(hierarchy)
            .join("machine.slice");
        for scope in fs::read_dir(&slice).into_iter().flatten().flatten() {
            let name = scope.file_name().to_string_lossy().into_owned();
            // machine-smsotp-TAG-PID-N.scope
            let pid = name
                .strip_prefix("machine-smsotp-")
                .and_then(|rest| rest.strip_suffix(".scope"))
                .and_then(|rest| rest.rsplit('-').nth(1));
            if owner_gone(pid) {
                remove_cgroup(&scope.path());
            }
        }
    }
}

/// A finished build (the marker is written last) whose key files are all
/// still there.
fn intact(root: &Path) -> bool {
    root.join(COMPLETE).exists() && MUST_EXIST.iter().all(|f| root.join(f).exists())
}

fn mirror() -> String {
    if let Ok(m) = std::env::var("SMSOTP_DEBIAN_MIRROR") {
        return m;
    }
    // The host's own mirror (deb822 or one-line format); the network here
    // may reach only that one.
    let text = fs::read_to_string("/etc/apt/sources.list.d/debian.sources")
        .or_else(|_| fs::read_to_string("/etc/apt/sources.list"))
        .unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            l.strip_prefix("URIs:").or_else(|| {
                l.strip_prefix("deb ")
                    .and_then(|r| r.split_whitespace().next())
            })
        })
        .flat_map(str::split_whitespace)
        .find(|u| u.starts_with("http") && !u.contains("security"))
        .unwrap_or("http://deb.debian.org/debian")
        .to_string()
}

fn build_image(root: &Path) {
    let partial = root.with_extension("partial");
    for stale in [root, partial.as_path()] {
        if stale.exists() {
            eprintln!("container image {}: broken, rebuilding", stale.display());
            fs::remove_dir_all(stale).expect("remove the broken image");
        }
    }
    // An image of an earlier package list serves only a checkout of an
    // older revision; keep the cache at one image (~175 MB).
    for old in fs::read_dir(CACHE).expect("read the cache").flatten() {
        let name = old.file_name().to_string_lossy().into_owned();
        if name.starts_with(IMAGE_PREFIX) && !name.starts_with(IMAGE) {
            eprintln!("removing the old container image {name}");
            let _ = fs::remove_dir_all(old.path());
        }
    }
    let started = Instant::now();
    let out = Command::new("timeout")
        .args(["900", "debootstrap", "--variant=minbase"])
        .arg(format!("--include={PACKAGES}"))
        .arg("bookworm")
        .arg(&partial)
        .arg(mirror())
        .stdin(Stdio::null())
        .output()
        .expect("run debootstrap");
    assert!(
        out.status.success(),
        "debootstrap failed ({}):\n{}",
        out.status,
        tail(&out.stdout, 3000)
    );
    // A persistent journal (journalctl -D reads it from the host), no
    // downloaded .debs, and sshd not started at boot (the tests start the
    // one they configure).
    fs::create_dir_all(partial.join("var/log/journal")).expect("journal dir");
    let _ = Command::new("sh")
        .arg("-c")
        .arg(
            "rm -rf \"$1\"/var/cache/apt/archives/*.deb \"$1\"/var/lib/apt/lists/*; \
              rm -f \"$1\"/etc/systemd/system/multi-user.target.wants/ssh.service \
                    \"$1\"/etc/systemd/system/sshd.service",
        )
        .arg("sh")
        .arg(&partial)
        .status();
    fs::write(partial.join(COMPLETE), PACKAGES).expect("mark the image complete");
    fs::rename(&partial, root).expect("publish the image");
    eprintln!(
        "container image built in {:?}: {}",
        started.elapsed(),
        root.display()
    );
}

fn tail(bytes: &[u8], n: usize) -> String {
    let s = String::from_utf8_lossy(bytes);
    s[s.len().saturating_sub(n)..].to_string()
}

/// A booted container. Dropping it powers it off and removes everything it
/// left on the host.
pub struct Container {
    pub name: String,
    nspawn: Child,
    leader: i32,
    cgroups: Vec<PathBuf>,
    work: tempfile::TempDir,
}

impl Container {
    /// Boots an overlay of the cached image and waits until systemd says
    /// `running` or `degraded`.
    pub fn boot(tag: &str) -> Container {
        Self::boot_with(tag, &[])
    }

    /// [`boot`](Self::boot), with host directories bound read-only at the
    /// same paths inside (a checkout, so its scripts and built binaries
    /// run there as they are).
    pub fn boot_with(tag: &str, read_only: &[&Path]) -> Container {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let image = image();
        let name = format!(
            "smsotp-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        // On the image's file system: overlayfs wants upper and work there
        // too, and /tmp may be a tmpfs too small for a test's writes.
        let work = tempfile::Builder::new()
            .prefix("run-")
            .tempdir_in(CACHE)
            .expect("overlay dir");
        for d in ["upper", "work", "merged"] {
            fs::create_dir(work.path().join(d)).expect("overlay subdir");
        }
        fs::write(work.path().join("owner"), std::process::id().to_string()).expect("owner");
        // Its own cgroup in both hierarchies (the host is hybrid v1 + v2):
        // systemd inside insists on owning one.
        let cgroups: Vec<PathBuf> = ["unified", "systemd"]
            .iter()
            .map(|h| Path::new("/sys/fs/cgroup").join(h))
            .filter(|h| h.join("cgroup.procs").exists())
            .map(|h| h.join(format!("machine.slice/machine-{name}.scope")))
            .collect();
        for cg in &cgroups {
            fs::create_dir_all(cg).expect("container cgroup");
        }
        let log = fs::File::create(work.path().join("nspawn.log")).expect("nspawn log");
        let started = Instant::now();
        // unshare: the overlay lives in this process's mount namespace only.
        // sh moves itself into the cgroups, then execs nspawn (same pid).
        let mut nspawn = Command::new("unshare");
        nspawn
            .args(["--mount", "--propagation", "private", "--", "/bin/sh", "-c"])
            .arg(
                "set -e; for cg in $CGROUPS; do echo $$ > \"$cg/cgroup.procs\"; done; \
                 img=$1 w=$2 n=$3; shift 3; \
                 mount -t overlay overlay -o \"lowerdir=$img,upperdir=$w/upper,workdir=$w/work\" \"$w/merged\"; \
                 exec systemd-nspawn -q -D \"$w/merged\" -M \"$n\" --boot --register=no --keep-unit \
                   --private-network --console=pipe \"$@\"",
            )
            .arg("sh")
            .arg(&image)
            .arg(work.path())
            .arg(&name)
            .args(read_only.iter().map(|p| format!("--bind-ro={}", p.display())))
            .env(
                "CGROUPS",
                cgroups
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(" "),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup"))
            .stderr(log);
        // If the test dies without dropping us (SIGKILL, timeout), nspawn
        // gets SIGTERM, which halts the container cleanly.
        // SAFETY: prctl is async-signal-safe; nothing else runs between
        // fork and exec.
        unsafe {
            nspawn.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
        let nspawn = nspawn.spawn().expect("start systemd-nspawn");
        let mut c = Container {
            name,
            leader: 0,
            nspawn,
            cgroups,
            work,
        };
        c.leader = c.wait_for_leader();
        c.wait_until_booted();
        eprintln!("container {} booted in {:?}", c.name, started.elapsed());
        c
    }

    fn log(&self) -> String {
        fs::read_to_string(self.work.path().join("nspawn.log")).unwrap_or_default()
    }

    /// The container's PID 1 is nspawn's child.
    fn wait_for_leader(&mut self) -> i32 {
        let pid = self.nspawn.id();
        let children = format!("/proc/{pid}/task/{pid}/children");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(st)) = self.nspawn.try_wait() {
                panic!("systemd-nspawn exited ({st}):\n{}", self.log());
            }
            let text = fs::read_to_string(&children).unwrap_or_default();
            if let Some(leader) = text.split_whitespace().next().and_then(|p| p.parse().ok()) {
                // Still the shell or nspawn itself until it has exec'ed
                // systemd.
                let comm = fs::read_to_string(format!("/proc/{leader}/comm")).unwrap_or_default();
                if comm.trim() == "systemd" {
                    return leader;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no container PID 1:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait_until_booted(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = self.run(&["systemctl", "is-system-running"]);
            let state = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if state == "running" || state == "degraded" {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "container did not finish booting (state {state:?}):\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The container's `/`, as the host sees it (while it runs).
    pub fn root(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root", self.leader))
    }

    /// `path` inside the container, as a host path.
    pub fn path(&self, path: &str) -> PathBuf {
        self.root().join(path.trim_start_matches('/'))
    }

    /// A command that runs inside every namespace of the container, with a
    /// clean environment (nothing of the test's leaks in).
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg("-t")
            .arg(self.leader.to_string())
            .args(["-a", "--"])
            .arg(program)
            .env_clear()
            .env("PATH", PATH)
            .env("LANG", "C.UTF-8")
            .env("SYSTEMD_PAGER", "")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `argv` inside; returns its output whatever the status.
    pub fn run(&self, argv: &[&str]) -> Output {
        self.command(argv[0])
            .args(&argv[1..])
            .output()
            .unwrap_or_else(|e| panic!("nsenter {argv:?}: {e}"))
    }

    /// Runs a shell script inside, asserts it succeeds, returns its stdout.
    pub fn sh(&self, script: &str) -> String {
        let out = self.run(&["/bin/sh", "-c", script]);
        assert!(
            out.status.success(),
            "in {}: {script}\nfailed ({}):\n{}{}",
            self.name,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Writes a file inside the container.
    pub fn write(&self, path: &str, contents: &str, mode: u32) {
        let host = self.path(path);
        fs::create_dir_all(host.parent().expect("parent")).expect("mkdir in container");
        fs::write(&host, contents).unwrap_or_else(|e| panic!("{}: {e}", host.display()));
        fs::set_permissions(&host, fs::Permissions::from_mode(mode)).expect("chmod");
    }

    /// `systemctl show -p PROP UNIT` as a string.
    pub fn show(&self, unit: &str, prop: &str) -> String {
        self.sh(&format!("systemctl show --value -p {prop} {unit}"))
            .trim()
            .to_string()
    }

    /// Journal entries (JSON) matching `journalctl` match arguments such as
    /// `SMSOTP_EVENT=code_sent`, read from the container's persistent
    /// journal by the host's journalctl.
    pub fn journal(&self, matches: &[&str]) -> Vec<serde_json::Value> {
        // Entries are buffered in journald; make them reach the files.
        let _ = self.run(&["journalctl", "--flush"]);
        let _ = self.run(&["journalctl", "--sync"]);
        let out = Command::new("journalctl")
            .arg("-D")
            .arg(self.path("/var/log/journal"))
            .args(["-o", "json", "--no-pager"])
            .args(matches)
            .output()
            .expect("journalctl");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Runs `f` in a thread inside the container's network namespace:
    /// a listener it binds (a loopback provider mock) is reachable from
    /// the container's 127.0.0.1 and only from there.
    pub fn in_netns<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let ns = fs::File::open(format!("/proc/{}/ns/net", self.leader)).expect("netns");
        std::thread::scope(|s| {
            s.spawn(|| {
                // SAFETY: setns on a descriptor we own; it changes only this
                // thread's network namespace, and the thread ends here.
                let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
                f()
            })
            .join()
            .expect("netns thread")
        })
    }

    fn wait_nspawn(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.nspawn.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if self.leader > 0 {
            let _ = self
                .command("systemctl")
                .args(["poweroff", "--no-block"])
                .status();
        }
        if !self.wait_nspawn(Duration::from_secs(20)) {
            eprintln!("container {}: no clean poweroff, killing it", self.name);
            let _ = self.nspawn.kill();
            let _ = self.nspawn.wait();
        }
        // Depth first: systemd inside made sub-cgroups of ours.
        for cg in &self.cgroups {
            remove_cgroup(cg);
            // machine.slice too, unless another container still uses it.
            let _ = cg.parent().map(fs::remove_dir);
        }
    }
}

fn remove_cgroup(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_cgroup(&e.path());
            }
        }
    }
    let _ = fs::remove_dir(dir);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_half_built_or_damaged_image_is_not_intact() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        for f in MUST_EXIST {
            fs::create_dir_all(root.join(f).parent().expect("parent")).expect("mkdir");
            fs::write(root.join(f), "").expect("write");
        }
        assert!(!intact(root), "no marker: debootstrap did not finish");
        fs::write(root.join(COMPLETE), PACKAGES).expect("marker");
        assert!(intact(root));
        fs::remove_file(root.join("usr/sbin/sshd")).expect("damage it");
        assert!(!intact(root), "a missing key file");
    }
}
