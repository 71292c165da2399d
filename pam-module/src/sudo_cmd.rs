//! What a sudo step-up is for, for `{{command}}` in the SMS.
//!
//! sudo 1.9 puts `SUDO_COMMAND` into the PAM environment only when it opens
//! the session, after `pam_authenticate`; during authentication the module
//! runs inside sudo's own process, whose argv is exactly what sudo is
//! parsing. So when this process is really the setuid-root sudo binary, its
//! `/proc/self/cmdline` is read (bounded) and parsed the way sudo 1.9.13's
//! `parse_args.c` does (`getopt_long` with `+`, `-h`'s optional argument,
//! `NAME=value` words between options, `--`, `sudoedit`).
//!
//! The result is shown as typed, not resolved along a PATH: which `PATH`
//! applies (`secure_path`, the user's) is the sudoers plugin's decision and
//! cannot be known from here, and a path guessed with the wrong one would
//! be a lie that looks authoritative. What the user typed is what their
//! terminal shows, so the phone shows the same thing.
//!
//! Argv is the invoking user's text: it is only ever displayed, every word
//! is made printable and quoted so word boundaries cannot be faked, and the
//! whole is capped at [`MAX_SHOWN`] characters.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;

/// Characters of command shown at most: about one SMS segment's worth next
/// to the code, and a long command is recognisable from its start.
pub const MAX_SHOWN: usize = 120;
/// Marks a shortened command; ASCII so the SMS stays in the GSM 7-bit
/// alphabet (an ellipsis character would force UCS-2, 70 chars a segment).
const CUT: &str = "...";
/// Bytes of `/proc/self/cmdline` read at most. Options come first and are
/// short; a command line longer than this is shown cut anyway.
const MAX_CMDLINE: u64 = 64 * 1024;
/// Values of `NAME=value` words are not shown: they are where a
/// `PGPASSWORD=...` would be, and the name says enough.
const HIDDEN: &str = "***";

/// Why no command could be described.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ArgvError {
    #[error("argv is empty")]
    Empty,
    /// sudo itself would print its usage and exit before authenticating,
    /// so a line like this never reaches PAM from a real sudo.
    #[error("sudo would reject this command line: {0}")]
    Usage(&'static str),
    #[error("the command line was cut before the command")]
    Truncated,
}

/// The command of the sudo process this module runs in, or `None` when
/// this process is not sudo or its command line cannot be described.
pub fn from_proc() -> Option<String> {
    if !running_sudo() {
        return None;
    }
    let mut raw = Vec::new();
    File::open("/proc/self/cmdline")
        .ok()?
        .take(MAX_CMDLINE)
        .read_to_end(&mut raw)
        .ok()?;
    let truncated = raw.len() as u64 >= MAX_CMDLINE;
    let raw = raw.strip_suffix(b"\0").unwrap_or(&raw);
    let argv: Vec<&[u8]> = raw.split(|&b| b == 0).collect();
    describe(&argv, truncated).ok()
}

/// True when the running executable is a root-owned setuid file named
/// `sudo` and this process has root's effective uid: only root can create
/// such a file, so no other program (a user's own libpam client naming the
/// `sudo` service, say) gets its argv shown as a sudo command.
fn running_sudo() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return false;
    }
    let named_sudo = std::fs::read_link("/proc/self/exe")
        .is_ok_and(|p| p.file_name().is_some_and(|n| n == "sudo"));
    named_sudo
        && std::fs::metadata("/proc/self/exe")
            .is_ok_and(|m| m.is_file() && m.uid() == 0 && m.mode() & 0o4000 != 0)
}

/// How sudo treats an option's argument.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Arg {
    None,
    Required,
    /// Only attached (`-hHOST`, `--preserve-env=LIST`).
    Optional,
}

/// sudo 1.9.13's `short_opts`: "+Aa:BbC:c:D:Eeg:Hh::iKklNnPp:R:r:SsT:t:U:u:Vv".
fn short_arg(c: u8) -> Option<Arg> {
    match c {
        b'a' | b'C' | b'c' | b'D' | b'g' | b'p' | b'R' | b'r' | b'T' | b't' | b'U' | b'u' => {
            Some(Arg::Required)
        }
        b'h' => Some(Arg::Optional),
        b'A' | b'B' | b'b' | b'E' | b'e' | b'H' | b'i' | b'K' | b'k' | b'l' | b'N' | b'n'
        | b'P' | b'S' | b's' | b'V' | b'v' => Some(Arg::None),
        _ => None,
    }
}

/// sudo 1.9.13's `long_opts`, as (name, short equivalent, argument).
/// `--host` has no short form (`-h` alone is help); `b'@'` stands for it.
const LONG: [(&str, u8, Arg); 31] = [
    ("askpass", b'A', Arg::None),
    ("auth-type", b'a', Arg::Required),
    ("background", b'b', Arg::None),
    ("bell", b'B', Arg::None),
    ("close-from", b'C', Arg::Required),
    ("login-class", b'c', Arg::Required),
    ("chdir", b'D', Arg::Required),
    ("preserve-env", b'E', Arg::Optional),
    ("edit", b'e', Arg::None),
    ("group", b'g', Arg::Required),
    ("set-home", b'H', Arg::None),
    ("help", b'h', Arg::None),
    ("host", b'@', Arg::Required),
    ("login", b'i', Arg::None),
    ("remove-timestamp", b'K', Arg::None),
    ("reset-timestamp", b'k', Arg::None),
    ("list", b'l', Arg::None),
    ("no-update", b'N', Arg::None),
    ("non-interactive", b'n', Arg::None),
    ("preserve-groups", b'P', Arg::None),
    ("prompt", b'p', Arg::Required),
    ("chroot", b'R', Arg::Required),
    ("role", b'r', Arg::Required),
    ("stdin", b'S', Arg::None),
    ("shell", b's', Arg::None),
    ("command-timeout", b'T', Arg::Required),
    ("type", b't', Arg::Required),
    ("other-user", b'U', Arg::Required),
    ("user", b'u', Arg::Required),
    ("version", b'V', Arg::None),
    ("validate", b'v', Arg::None),
];

/// getopt_long's lookup: an exact name, or a prefix of exactly one.
fn long_opt(name: &[u8]) -> Result<(u8, Arg), ArgvError> {
    if let Some(&(_, c, a)) = LONG.iter().find(|(n, _, _)| n.as_bytes() == name) {
        return Ok((c, a));
    }
    let mut matches = LONG
        .iter()
        .filter(|(n, _, _)| n.as_bytes().starts_with(name));
    match (matches.next(), matches.next()) {
        (Some(&(_, c, a)), None) if !name.is_empty() => Ok((c, a)),
        (Some(_), Some(_)) => Err(ArgvError::Usage("ambiguous long option")),
        _ => Err(ArgvError::Usage("unknown long option")),
    }
}

/// The parts of a sudo invocation that say what is being approved. The
/// rest (prompt text, remote host, chdir, timeouts ...) is left out: it
/// does not change what runs as whom, and the prompt is free text.
#[derive(Default)]
struct Invocation<'a> {
    edit: bool,
    user: Option<&'a [u8]>,
    group: Option<&'a [u8]>,
    /// `-i` or `-s`.
    shell: Option<u8>,
    /// `-l`, `-v` and the modes that never authenticate.
    mode: Option<u8>,
    env: Vec<&'a [u8]>,
    command: Vec<&'a [u8]>,
}

impl<'a> Invocation<'a> {
    fn option(&mut self, c: u8, value: Option<&'a [u8]>) {
        match c {
            b'u' => self.user = value,
            b'g' => self.group = value,
            b'e' => self.edit = true,
            b'i' | b's' => self.shell = Some(c),
            b'l' | b'v' | b'K' | b'V' => self.mode = Some(c),
            // `-h` with no host is help, with one a remote host.
            b'h' if value.is_none() => self.mode = Some(c),
            _ => {}
        }
    }
}

/// sudo's `is_envar`: a word with `=` that does not start with `/`.
fn is_envar(word: &[u8]) -> bool {
    word.first() != Some(&b'/') && word.contains(&b'=')
}

fn parse<'a>(argv: &[&'a [u8]]) -> Result<Invocation<'a>, ArgvError> {
    let prog = argv.first().ok_or(ArgvError::Empty)?;
    let prog = prog.rsplit(|&b| b == b'/').next().unwrap_or(prog);
    let mut inv = Invocation {
        // sudo: a program name longer than 4 bytes ending in "edit".
        edit: prog.len() > 4 && prog.ends_with(b"edit"),
        ..Invocation::default()
    };
    let mut rest = argv.get(1..).unwrap_or_default().iter().copied();
    let mut pending: Option<&[u8]> = None;
    while let Some(word) = pending.take().or_else(|| rest.next()) {
        if word == b"--" {
            break;
        }
        if let Some(long) = word.strip_prefix(b"--") {
            let (name, attached) = match long.iter().position(|&b| b == b'=') {
                Some(i) => (long.get(..i).unwrap_or_default(), long.get(i + 1..)),
                None => (long, None),
            };
            let (c, arg) = long_opt(name)?;
            let value = match (arg, attached) {
                (Arg::None, Some(_)) => return Err(ArgvError::Usage("option takes no argument")),
                (Arg::Required, None) => Some(
                    rest.next()
                        .ok_or(ArgvError::Usage("option needs an argument"))?,
                ),
                (_, value) => value,
            };
            // --host=HOST is -hHOST; --help is -h without one.
            inv.option(if c == b'@' { b'h' } else { c }, value);
        } else if word.len() > 1 && word.first() == Some(&b'-') {
            let cluster = word.get(1..).unwrap_or_default();
            for (i, &c) in cluster.iter().enumerate() {
                let after = cluster.get(i + 1..).filter(|a| !a.is_empty());
                match short_arg(c).ok_or(ArgvError::Usage("unknown option"))? {
                    Arg::None => inv.option(c, None),
                    Arg::Required => {
                        let value = match after {
                            Some(v) => v,
                            None => rest
                                .next()
                                .ok_or(ArgvError::Usage("option needs an argument"))?,
                        };
                        inv.option(c, Some(value));
                        break;
                    }
                    Arg::Optional => {
                        // "-h HOST" (the whole word "-h", then a word that
                        // is neither an option nor NAME=value) is a host.
                        let host = after.or_else(|| {
                            let next = rest.next()?;
                            let is_host =
                                word == b"-h" && !is_envar(next) && next.first() != Some(&b'-');
                            if is_host {
                                Some(next)
                            } else {
                                pending = Some(next);
                                None
                            }
                        });
                        inv.option(c, host);
                        break;
                    }
                }
            }
        } else if is_envar(word) {
            inv.env.push(word);
        } else {
            inv.command.push(word);
            break;
        }
    }
    inv.command.extend(pending.into_iter().chain(rest));
    Ok(inv)
}

/// Describes a sudo command line (`argv[0]` included) the way the SMS
/// shows it. `truncated`: the last word was cut by the read bound.
pub fn describe(argv: &[&[u8]], truncated: bool) -> Result<String, ArgvError> {
    // The cut word is dropped whole, and the mark stands apart from the
    // last complete word so that word does not look cut.
    let (argv, tail) = match (truncated, argv.split_last()) {
        (true, Some((_, whole))) => (whole, format!(" {CUT}")),
        _ => (argv, String::new()),
    };
    let inv = parse(argv)?;
    if truncated && inv.command.is_empty() {
        return Err(ArgvError::Truncated);
    }
    let mut words: Vec<String> = Vec::new();
    if inv.edit {
        words.push("sudoedit".into());
    }
    for (flag, value) in [("-u", inv.user), ("-g", inv.group)] {
        if let Some(value) = value {
            words.push(flag.into());
            words.push(quote(value));
        }
    }
    for c in inv.shell.iter().chain(&inv.mode) {
        words.push(format!("-{}", char::from(*c)));
    }
    for var in &inv.env {
        let name = var.split(|&b| b == b'=').next().unwrap_or_default();
        words.push(format!("{}={HIDDEN}", quote(name)));
    }
    words.extend(inv.command.iter().map(|w| quote(w)));
    match (inv.shell, inv.command.is_empty(), inv.mode) {
        (Some(b'i'), true, None) => words.push("(login shell)".into()),
        // No command at all is sudo's implied shell.
        (_, true, None) => words.push("(shell)".into()),
        _ => {}
    }
    Ok(bound(&(words.join(" ") + &tail)))
}

/// Makes one argv word printable and unambiguous: invalid UTF-8 becomes
/// U+FFFD, control and invisible formatting characters become `?`, and a
/// word with anything but plain path characters is single-quoted, so a
/// space or quote inside an argument cannot pass for a word boundary.
fn quote(word: &[u8]) -> String {
    let text = printable(&String::from_utf8_lossy(word));
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_alphanumeric() || "_@%+=:,./-".contains(c));
    if plain {
        text
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() || invisible(c) {
                '?'
            } else {
                c
            }
        })
        .collect()
}

/// Unicode format characters that reorder or hide text (bidi overrides,
/// zero-width characters): on a phone they could make one command read as
/// another.
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{FEFF}'
        | '\u{FFF9}'..='\u{FFFB}')
}

/// Printable and at most [`MAX_SHOWN`] characters, cut ones ending in
/// [`CUT`]. Also applied to a `SUDO_COMMAND` taken from the PAM
/// environment, so every command the module sends obeys the same bound.
pub fn bound(command: &str) -> String {
    let command = printable(command);
    if command.chars().count() <= MAX_SHOWN {
        return command;
    }
    let keep = MAX_SHOWN - CUT.len();
    command.chars().take(keep).collect::<String>() + CUT
}

#[cfg(test)]
mod tests;
