//! The module's load cost: libpam dlopens every module of a stack at each
//! `pam_start` and dlcloses it at `pam_end` (sshd: once per connection),
//! so a module pays its mapping, page faults and relocations per login.
//! `smsotp-bench dlopen` times dlopen(RTLD_NOW)+dlclose of pam_smsotp.so
//! against pam_permit.so and pam_unix.so in one run, rounds interleaved
//! so that machine noise hits all three alike, and says whether dlclose
//! really unmapped the object (otherwise later rounds would be free).

use crate::args::{list, num, pairs, usage};
use crate::subjects::module_path;
use std::ffi::CString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

pub struct Row {
    pub name: String,
    pub bytes: u64,
    pub relocations: Option<usize>,
    pub median: Duration,
    pub p90: Duration,
    pub unmapped: bool,
}

/// Relocation entries (`readelf -r`), the dynamic linker's per-load work.
fn relocations(path: &Path) -> Option<usize> {
    let out = Command::new("readelf").arg("-rW").arg(path).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    Some(
        text.lines()
            .filter(|l| {
                l.split_whitespace()
                    .next()
                    .is_some_and(|w| w.len() >= 12 && w.bytes().all(|b| b.is_ascii_hexdigit()))
            })
            .count(),
    )
}

fn mapped(path: &Path) -> bool {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let p = path.canonicalize().unwrap_or(path.to_path_buf());
    maps.contains(&*p.to_string_lossy())
}

/// One dlopen(RTLD_NOW)+dlclose; None if dlopen failed.
fn round(c: &CString) -> Option<Duration> {
    let t = Instant::now();
    // SAFETY: a valid C string; the handle is closed right away and no
    // symbol of it is used.
    let h = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    if h.is_null() {
        return None;
    }
    // SAFETY: the handle dlopen just returned.
    unsafe { libc::dlclose(h) };
    Some(t.elapsed())
}

/// The libraries `path` needs (DT_NEEDED), as the dynamic linker finds them.
fn needed(path: &Path) -> Vec<String> {
    let out = Command::new("readelf").arg("-dW").arg(path).output();
    let text = out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    text.unwrap_or_default()
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| Some(l.split('[').nth(1)?.trim_end_matches(']').to_string()))
        .collect()
}

/// Keeps every library the modules need loaded (sshd and sudo already
/// link libcrypt, libaudit, libselinux...), so a round is the module alone.
fn hold_needed(mods: &[(String, PathBuf)]) -> Vec<*mut libc::c_void> {
    mods.iter()
        .flat_map(|(_, p)| needed(p))
        .filter_map(|lib| {
            let c = CString::new(lib).ok()?;
            // SAFETY: a valid C string; the handle is kept for the process.
            let h = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
            (!h.is_null()).then_some(h)
        })
        .collect()
}

/// pam_smsotp.so of `target`, pam_permit.so, pam_unix.so and `also`
/// (other builds of the module, by path). `warm`: their libraries held.
pub fn measure(
    target: &Path,
    rounds: usize,
    also: &[PathBuf],
    warm: bool,
) -> Result<Vec<Row>, String> {
    let mut mods: Vec<(String, PathBuf)> =
        vec![("pam_smsotp.so".into(), target.join("libpam_smsotp.so"))];
    for m in ["pam_permit.so", "pam_unix.so"] {
        mods.push((m.into(), module_path(m).ok_or(format!("{m} not found"))?));
    }
    for p in also {
        mods.push((p.display().to_string(), p.clone()));
    }
    let _held = if warm { hold_needed(&mods) } else { Vec::new() };
    let cs: Vec<CString> = mods
        .iter()
        .map(|(_, p)| CString::new(p.to_string_lossy().as_bytes()).unwrap())
        .collect();
    let mut times: Vec<Vec<Duration>> = vec![Vec::with_capacity(rounds); mods.len()];
    for r in 0..rounds + rounds / 10 {
        for (i, c) in cs.iter().enumerate() {
            let d = round(c).ok_or_else(|| format!("dlopen {} failed", mods[i].1.display()))?;
            // The first tenth warms the page cache and the allocator.
            if r >= rounds / 10 {
                times[i].push(d);
            }
        }
    }
    Ok(mods
        .into_iter()
        .zip(times)
        .map(|((name, path), mut t)| {
            t.sort_unstable();
            Row {
                bytes: std::fs::metadata(&path).map_or(0, |m| m.len()),
                relocations: relocations(&path),
                median: t[t.len() / 2],
                p90: t[t.len() * 9 / 10],
                unmapped: !mapped(&path),
                name,
            }
        })
        .collect())
}

pub fn render(rows: &[Row], rounds: usize, warm: bool) -> String {
    let deps = if warm {
        "the libraries they need held loaded (as in sshd and sudo, which link them)"
    } else {
        "cold: the libraries they need loaded and unloaded with them"
    };
    let mut md = format!(
        "module load cost: dlopen(RTLD_NOW)+dlclose, {rounds} rounds each, interleaved; {deps}:\n\n\
         | module | bytes | relocations | median us | p90 us | x pam_unix | unmapped by dlclose |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | --- |\n"
    );
    let unix = rows
        .iter()
        .find(|r| r.name == "pam_unix.so")
        .map(|r| r.median);
    for r in rows {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.1} | {:.1} | {:.2} | {} |",
            r.name,
            r.bytes,
            r.relocations.map_or("?".into(), |n| n.to_string()),
            r.median.as_secs_f64() * 1e6,
            r.p90.as_secs_f64() * 1e6,
            unix.map_or(0.0, |u| r.median.as_secs_f64() / u.as_secs_f64().max(1e-12)),
            if r.unmapped {
                "yes"
            } else {
                "NO (later rounds are not a real load)"
            }
        );
    }
    md
}

/// Cold first, then warm: the warm pass keeps libraries for the process.
pub fn section(target: &Path, rounds: usize) -> String {
    let mut md = String::new();
    for warm in [false, true] {
        match measure(target, rounds, &[], warm) {
            Ok(rows) => md += &render(&rows, rounds, warm),
            Err(e) => md += &format!("module load cost: not measured ({e})\n"),
        }
        md += "\n";
    }
    md
}

pub fn main(args: impl Iterator<Item = String>) -> ExitCode {
    let (mut rounds, mut also, mut warm) = (5000, Vec::new(), false);
    for (flag, val) in pairs(args) {
        match flag.as_str() {
            "--rounds" => rounds = num(&val),
            "--also" => also = list(&val).into_iter().map(PathBuf::from).collect(),
            "--warm" => warm = true,
            _ => usage(),
        }
    }
    let rounds = rounds.max(10);
    match measure(&crate::subjects::target(), rounds, &also, warm) {
        Ok(rows) => {
            println!("{}", render(&rows, rounds, warm));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("smsotp-bench dlopen: {e}");
            ExitCode::FAILURE
        }
    }
}
