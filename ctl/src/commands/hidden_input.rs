//! One line from the terminal with echo off, as `getpass`/`readpassphrase`
//! do it: the terminal gets its settings back however the read ends,
//! including Ctrl-C, Ctrl-\, SIGTERM and a hang-up, which would otherwise
//! kill us and leave the user's shell typing blind.

use std::io::{BufRead, Write};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::OnceLock;
use zeroize::Zeroizing;

/// The terminal a signal must put back, or -1 while none is changed.
static CHANGED_FD: AtomicI32 = AtomicI32::new(-1);
/// Its settings before the prompt. Set once: every prompt of this process
/// starts from the same terminal.
static SAVED: OnceLock<libc::termios> = OnceLock::new();

/// The signals that end us by default and can come from the keyboard or
/// the session while we wait for a line.
const ENDING: [libc::c_int; 4] = [libc::SIGINT, libc::SIGQUIT, libc::SIGTERM, libc::SIGHUP];

extern "C" fn restore_and_die(sig: libc::c_int) {
    let fd = CHANGED_FD.load(Ordering::SeqCst);
    if let (true, Some(saved)) = (fd >= 0, SAVED.get()) {
        // SAFETY: tcsetattr, write, signal and raise are async-signal-safe;
        // `saved` was fully written before the handler was installed.
        unsafe {
            libc::tcsetattr(fd, libc::TCSAFLUSH, saved);
            libc::write(fd, b"\n".as_ptr().cast(), 1);
        }
    }
    // Die of the signal as if we had never caught it, so the shell sees
    // the usual status (130 for Ctrl-C).
    // SAFETY: as above.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
}

/// The previous dispositions, put back when the prompt is over.
struct Handlers([libc::sigaction; ENDING.len()]);

impl Handlers {
    fn install() -> std::io::Result<Handlers> {
        // SAFETY: zeroed sigaction structs are valid; sigaction writes the
        // old action into `old` and reads only `new`.
        unsafe {
            let mut new: libc::sigaction = std::mem::zeroed();
            new.sa_sigaction = restore_and_die as *const () as libc::sighandler_t;
            libc::sigemptyset(&mut new.sa_mask);
            let mut olds = [std::mem::zeroed::<libc::sigaction>(); ENDING.len()];
            for (sig, old) in ENDING.iter().zip(olds.iter_mut()) {
                if libc::sigaction(*sig, &new, old) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(Handlers(olds))
        }
    }
}

impl Drop for Handlers {
    fn drop(&mut self) {
        for (sig, old) in ENDING.iter().zip(self.0.iter()) {
            // SAFETY: restoring an action sigaction gave us.
            unsafe { libc::sigaction(*sig, old, std::ptr::null_mut()) };
        }
    }
}

/// Writes `prompt` to `/dev/tty` and reads one line there with echo off.
pub fn read_line(prompt: &str) -> std::io::Result<Zeroizing<String>> {
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")?;
    let fd = tty.as_raw_fd();
    // SAFETY: tcgetattr fills a termios for our open descriptor.
    let saved = unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(fd, &mut t) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        t
    };
    let saved = *SAVED.get_or_init(|| saved);
    let mut quiet = saved;
    quiet.c_lflag &= !libc::ECHO;
    quiet.c_lflag |= libc::ECHONL;
    (&tty).write_all(prompt.as_bytes())?;
    let handlers = Handlers::install()?;
    CHANGED_FD.store(fd, Ordering::SeqCst);
    // SAFETY: as above; `quiet` is a copy of a valid termios.
    if unsafe { libc::tcsetattr(fd, libc::TCSAFLUSH, &quiet) } != 0 {
        CHANGED_FD.store(-1, Ordering::SeqCst);
        return Err(std::io::Error::last_os_error());
    }
    let mut line = Zeroizing::new(String::new());
    let read = std::io::BufReader::new(&tty).read_line(&mut line);
    // SAFETY: as above.
    unsafe { libc::tcsetattr(fd, libc::TCSAFLUSH, &saved) };
    CHANGED_FD.store(-1, Ordering::SeqCst);
    drop(handlers);
    read.map(|_| line)
}
