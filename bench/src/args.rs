//! Command line of `smsotp-bench`: the whole-login benchmark (default) and
//! its subcommands (`dlopen`, `daemon`, `callgrind-login`).

use crate::subjects::USERS;
use std::path::PathBuf;

/// Options of the whole-login benchmark.
pub struct Args {
    pub seconds: f64,
    pub concurrency: Vec<usize>,
    pub pending: usize,
    pub only: Option<Vec<String>>,
    pub tls_target_dir: Option<PathBuf>,
    pub out: Option<PathBuf>,
    pub perf: Option<PathBuf>,
    /// Logins per subject under callgrind (0: skip the instruction counts).
    pub callgrind: usize,
    /// Where to keep the callgrind files (default: a temp dir).
    pub callgrind_dir: Option<PathBuf>,
    /// Module load cost: dlopen+dlclose rounds per module (0: skip).
    pub dlopen: usize,
    /// CI smoke run: exit 1 on any wrong outcome (never on slowness).
    pub smoke: bool,
}

pub fn usage() -> ! {
    eprintln!(
        "usage: smsotp-bench [--seconds S] [--concurrency 1,16,64] [--pending N] \
         [--only floor,smsotp-http,smsotp-https,gauth,oath] [--tls-target-dir DIR] \
         [--out FILE.md] [--perf DIR] [--callgrind LOGINS] [--callgrind-dir DIR] [--dlopen ROUNDS] [--smoke]\n\
         \x20      smsotp-bench dlopen [--rounds N] [--warm] [--also A.so,B.so]\n\
         \x20      smsotp-bench daemon [--seconds S] [--connections N] [--only sqlite-normal,sqlite-full,postgres] [--provider outbox|gateway] [--callgrind CYCLES] [--out FILE.md]\n\
         Run as root. SMSOTP_TARGET_DIR names the directory with smsotpd and \
         libpam_smsotp.so (a release build)."
    );
    std::process::exit(2)
}

/// `--flag value` pairs; unknown flags are the caller's to refuse.
pub fn pairs(args: impl Iterator<Item = String>) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let mut it = args.peekable();
    while let Some(arg) = it.next() {
        let takes_value = !matches!(arg.as_str(), "--smoke" | "--warm");
        let val = if takes_value {
            Some(it.next().unwrap_or_else(|| usage()))
        } else {
            None
        };
        out.push((arg, val));
    }
    out
}

pub fn num<T: std::str::FromStr>(v: &Option<String>) -> T {
    v.as_deref()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| usage())
}

pub fn list(v: &Option<String>) -> Vec<String> {
    v.as_deref()
        .unwrap_or_else(|| usage())
        .split(',')
        .map(str::to_string)
        .collect()
}

pub fn parse_logins(args: impl Iterator<Item = String>) -> Args {
    let mut a = Args {
        seconds: 5.0,
        concurrency: vec![1, 16, 64],
        pending: 100_000,
        only: None,
        tls_target_dir: None,
        out: None,
        perf: None,
        callgrind: 30,
        callgrind_dir: None,
        dlopen: 2000,
        smoke: false,
    };
    for (flag, val) in pairs(args) {
        match flag.as_str() {
            "--seconds" => a.seconds = num(&val),
            "--concurrency" => {
                a.concurrency = list(&val).iter().map(|c| num(&Some(c.clone()))).collect()
            }
            "--pending" => a.pending = num(&val),
            "--only" => a.only = Some(list(&val)),
            "--tls-target-dir" => a.tls_target_dir = val.map(PathBuf::from),
            "--out" => a.out = val.map(PathBuf::from),
            "--perf" => a.perf = val.map(PathBuf::from),
            "--callgrind" => a.callgrind = num(&val),
            "--callgrind-dir" => a.callgrind_dir = val.map(PathBuf::from),
            "--dlopen" => a.dlopen = num(&val),
            "--smoke" => a.smoke = true,
            _ => usage(),
        }
    }
    if a.concurrency.iter().any(|&c| c == 0 || c > USERS) {
        eprintln!("concurrency must be 1..={USERS}");
        usage();
    }
    a
}
