//! Hard bounds on everything that crosses the socket. They are part of the
//! protocol: both sides enforce them, so a hostile peer cannot make the
//! other allocate or log without bound.

/// Largest frame either side will read or write. Real messages are a few
/// hundred bytes; 64 KiB leaves room for growth without letting a peer make
/// us allocate much.
pub const MAX_FRAME: usize = 64 * 1024;

/// Login names: POSIX allows 32, directory services allow longer ones.
pub const MAX_USER: usize = 256;
/// PAM service names (`sshd`, `sudo`, `sshd-smsotp-test`).
pub const MAX_SERVICE: usize = 64;
/// PAM_RHOST: a DNS name is at most 253 bytes.
pub const MAX_RHOST: usize = 255;
/// PAM_TTY, e.g. `/dev/pts/12` or `ssh`.
pub const MAX_TTY: usize = 64;
/// The sudo command line shown in the SMS text, if the template asks.
pub const MAX_COMMAND: usize = 1024;
/// What a user may type at the code prompt (codes are at most 10, backup
/// codes a little longer; anything past this is rejected, not truncated).
pub const MAX_CODE: usize = 64;
/// Free-text reasons in replies.
pub const MAX_REASON: usize = 512;
/// A mobile number as typed at the enrolment prompt (E.164 is 16 bytes;
/// room for stray spaces, which the daemon strips).
pub const MAX_MOBILE: usize = 32;
/// Backup codes in one `BackupCodes` answer.
pub const MAX_BACKUP_CODES: usize = 32;
/// A file named in an admin request (`ImportStore`).
pub const MAX_PATH: usize = 4096;
