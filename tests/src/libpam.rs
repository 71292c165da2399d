//! Drives the real Linux-PAM library through FFI.
//!
//! [`Pam::start`] calls `pam_start_confdir` (Linux-PAM >= 1.4), so a test
//! names its own pam.d directory instead of touching `/etc/pam.d`. The
//! conversation function records every message into a [`Transcript`] and
//! answers prompts from a Rust closure; the closure runs between prompts, so
//! it can read the outbox for the code that was just sent.
//!
//! FFI rules kept here: replies are allocated with the C allocator (libpam
//! frees them with `free`), nothing unwinds across the C boundary (a panic in
//! the closure is caught, turned into `PAM_CONV_ERR`, and re-raised once
//! libpam has returned), and `pam_end` runs on every path.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::fmt;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::path::Path;
use std::ptr;

pub const PAM_SUCCESS: c_int = 0;
pub const PAM_OPEN_ERR: c_int = 1;
pub const PAM_SYMBOL_ERR: c_int = 2;
pub const PAM_SERVICE_ERR: c_int = 3;
pub const PAM_SYSTEM_ERR: c_int = 4;
pub const PAM_BUF_ERR: c_int = 5;
pub const PAM_PERM_DENIED: c_int = 6;
pub const PAM_AUTH_ERR: c_int = 7;
pub const PAM_CRED_INSUFFICIENT: c_int = 8;
pub const PAM_AUTHINFO_UNAVAIL: c_int = 9;
pub const PAM_USER_UNKNOWN: c_int = 10;
pub const PAM_MAXTRIES: c_int = 11;
pub const PAM_NEW_AUTHTOK_REQD: c_int = 12;
pub const PAM_ACCT_EXPIRED: c_int = 13;
pub const PAM_SESSION_ERR: c_int = 14;
pub const PAM_CRED_UNAVAIL: c_int = 15;
pub const PAM_CRED_EXPIRED: c_int = 16;
pub const PAM_CRED_ERR: c_int = 17;
pub const PAM_NO_MODULE_DATA: c_int = 18;
pub const PAM_CONV_ERR: c_int = 19;
pub const PAM_AUTHTOK_ERR: c_int = 20;
pub const PAM_TRY_AGAIN: c_int = 24;
pub const PAM_IGNORE: c_int = 25;
pub const PAM_ABORT: c_int = 26;
pub const PAM_AUTHTOK_EXPIRED: c_int = 27;
pub const PAM_MODULE_UNKNOWN: c_int = 28;
pub const PAM_BAD_ITEM: c_int = 29;

/// `pam_set_item` item types.
pub const PAM_SERVICE: c_int = 1;
pub const PAM_USER: c_int = 2;
pub const PAM_TTY: c_int = 3;
pub const PAM_RHOST: c_int = 4;
pub const PAM_RUSER: c_int = 8;

/// Flags for `pam_authenticate`.
pub const PAM_SILENT: c_int = 0x8000;
pub const PAM_DISALLOW_NULL_AUTHTOK: c_int = 0x0001;

const PAM_PROMPT_ECHO_OFF: c_int = 1;
const PAM_PROMPT_ECHO_ON: c_int = 2;
const PAM_ERROR_MSG: c_int = 3;
const PAM_TEXT_INFO: c_int = 4;

/// Linux-PAM never passes more messages than this in one call.
const PAM_MAX_NUM_MSG: c_int = 32;
/// A runaway module (or test) must not loop forever on prompts.
const MAX_PROMPTS_PER_HANDLE: usize = 64;

/// The symbolic name of a PAM return code, for assertion messages.
pub fn code_name(code: c_int) -> &'static str {
    match code {
        PAM_SUCCESS => "PAM_SUCCESS",
        PAM_OPEN_ERR => "PAM_OPEN_ERR",
        PAM_SYMBOL_ERR => "PAM_SYMBOL_ERR",
        PAM_SERVICE_ERR => "PAM_SERVICE_ERR",
        PAM_SYSTEM_ERR => "PAM_SYSTEM_ERR",
        PAM_BUF_ERR => "PAM_BUF_ERR",
        PAM_PERM_DENIED => "PAM_PERM_DENIED",
        PAM_AUTH_ERR => "PAM_AUTH_ERR",
        PAM_CRED_INSUFFICIENT => "PAM_CRED_INSUFFICIENT",
        PAM_AUTHINFO_UNAVAIL => "PAM_AUTHINFO_UNAVAIL",
        PAM_USER_UNKNOWN => "PAM_USER_UNKNOWN",
        PAM_MAXTRIES => "PAM_MAXTRIES",
        PAM_NEW_AUTHTOK_REQD => "PAM_NEW_AUTHTOK_REQD",
        PAM_ACCT_EXPIRED => "PAM_ACCT_EXPIRED",
        PAM_SESSION_ERR => "PAM_SESSION_ERR",
        PAM_CRED_UNAVAIL => "PAM_CRED_UNAVAIL",
        PAM_CRED_EXPIRED => "PAM_CRED_EXPIRED",
        PAM_CRED_ERR => "PAM_CRED_ERR",
        PAM_NO_MODULE_DATA => "PAM_NO_MODULE_DATA",
        PAM_CONV_ERR => "PAM_CONV_ERR",
        PAM_AUTHTOK_ERR => "PAM_AUTHTOK_ERR",
        PAM_TRY_AGAIN => "PAM_TRY_AGAIN",
        PAM_IGNORE => "PAM_IGNORE",
        PAM_ABORT => "PAM_ABORT",
        PAM_AUTHTOK_EXPIRED => "PAM_AUTHTOK_EXPIRED",
        PAM_MODULE_UNKNOWN => "PAM_MODULE_UNKNOWN",
        PAM_BAD_ITEM => "PAM_BAD_ITEM",
        _ => "PAM_(other)",
    }
}

#[repr(C)]
struct PamHandle {
    _opaque: [u8; 0],
}

#[repr(C)]
struct PamMessage {
    msg_style: c_int,
    msg: *const c_char,
}

#[repr(C)]
struct PamResponse {
    resp: *mut c_char,
    resp_retcode: c_int,
}

type ConvFn = unsafe extern "C" fn(
    num_msg: c_int,
    msg: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    appdata_ptr: *mut c_void,
) -> c_int;

#[repr(C)]
struct PamConv {
    conv: Option<ConvFn>,
    appdata_ptr: *mut c_void,
}

#[link(name = "pam")]
extern "C" {
    fn pam_start_confdir(
        service_name: *const c_char,
        user: *const c_char,
        pam_conversation: *const PamConv,
        confdir: *const c_char,
        pamh: *mut *mut PamHandle,
    ) -> c_int;
    fn pam_end(pamh: *mut PamHandle, pam_status: c_int) -> c_int;
    fn pam_authenticate(pamh: *mut PamHandle, flags: c_int) -> c_int;
    fn pam_acct_mgmt(pamh: *mut PamHandle, flags: c_int) -> c_int;
    fn pam_set_item(pamh: *mut PamHandle, item_type: c_int, item: *const c_void) -> c_int;
    fn pam_strerror(pamh: *mut PamHandle, errnum: c_int) -> *const c_char;
}

/// The style of one conversation message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    EchoOff,
    EchoOn,
    ErrorMsg,
    TextInfo,
    Other(i32),
}

impl Style {
    fn from_raw(style: c_int) -> Style {
        match style {
            PAM_PROMPT_ECHO_OFF => Style::EchoOff,
            PAM_PROMPT_ECHO_ON => Style::EchoOn,
            PAM_ERROR_MSG => Style::ErrorMsg,
            PAM_TEXT_INFO => Style::TextInfo,
            other => Style::Other(other),
        }
    }

    pub fn is_prompt(self) -> bool {
        matches!(self, Style::EchoOff | Style::EchoOn)
    }
}

/// One message a module sent through the conversation, and what the test
/// answered (prompts only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub style: Style,
    pub text: String,
    pub answer: Option<String>,
}

/// Everything the modules said, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transcript {
    pub entries: Vec<Entry>,
}

impl Transcript {
    /// Prompt texts (echo on or off), in order.
    pub fn prompts(&self) -> Vec<&str> {
        self.of_style(|s| s.is_prompt())
    }

    /// `PAM_ERROR_MSG` texts, in order.
    pub fn errors(&self) -> Vec<&str> {
        self.of_style(|s| s == Style::ErrorMsg)
    }

    /// `PAM_TEXT_INFO` texts, in order.
    pub fn infos(&self) -> Vec<&str> {
        self.of_style(|s| s == Style::TextInfo)
    }

    /// Prompts of the smsotp module (they start with `Code sent to `).
    pub fn code_prompts(&self) -> Vec<&str> {
        self.prompts()
            .into_iter()
            .filter(|p| p.starts_with("Code sent to "))
            .collect()
    }

    pub fn has_error(&self, text: &str) -> bool {
        self.errors().contains(&text)
    }

    pub fn has_error_starting_with(&self, prefix: &str) -> bool {
        self.errors().iter().any(|e| e.starts_with(prefix))
    }

    fn of_style(&self, keep: impl Fn(Style) -> bool) -> Vec<&str> {
        self.entries
            .iter()
            .filter(|e| keep(e.style))
            .map(|e| e.text.as_str())
            .collect()
    }
}

impl fmt::Display for Transcript {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.entries.is_empty() {
            return writeln!(f, "  (no conversation)");
        }
        for e in &self.entries {
            match &e.answer {
                Some(a) => writeln!(f, "  {:?}: {:?} -> {:?}", e.style, e.text, a)?,
                None => writeln!(f, "  {:?}: {:?}", e.style, e.text)?,
            }
        }
        Ok(())
    }
}

/// What the closure sees for each prompt.
pub struct Prompt<'t> {
    pub style: Style,
    pub text: &'t str,
    /// 0 for the first prompt of this handle, 1 for the next, ...
    pub index: usize,
    /// Everything said so far, this prompt included (as the last entry).
    pub transcript: &'t Transcript,
}

/// Answers a prompt; `None` fails the conversation (`PAM_CONV_ERR`).
pub type Responder<'a> = Box<dyn FnMut(&Prompt<'_>) -> Option<String> + 'a>;

struct ConvState<'a> {
    responder: Responder<'a>,
    transcript: Transcript,
    prompts: usize,
    /// A panic caught inside the conversation, re-raised after libpam returns.
    panic: Option<Box<dyn std::any::Any + Send + 'static>>,
}

/// One PAM transaction. `pam_end` runs on drop.
pub struct Pam<'a> {
    handle: *mut PamHandle,
    /// Owned; created by `Box::into_raw` and freed in `Drop` after `pam_end`.
    /// libpam holds the same pointer as the conversation's `appdata_ptr`.
    state: *mut ConvState<'a>,
    last: c_int,
}

impl<'a> Pam<'a> {
    /// `pam_start_confdir(service, user, conv, confdir)`. Service files are
    /// read from `confdir`, never from `/etc/pam.d`.
    pub fn start(
        service: &str,
        user: &str,
        confdir: &Path,
        responder: impl FnMut(&Prompt<'_>) -> Option<String> + 'a,
    ) -> Result<Pam<'a>, c_int> {
        let c_service = CString::new(service).expect("service name contains NUL");
        let c_user = CString::new(user).expect("user name contains NUL");
        let c_confdir =
            CString::new(confdir.as_os_str().as_encoded_bytes()).expect("confdir contains NUL");
        let state = Box::into_raw(Box::new(ConvState {
            responder: Box::new(responder),
            transcript: Transcript::default(),
            prompts: 0,
            panic: None,
        }));
        // libpam copies this struct; only `state` must outlive the handle.
        let conv = PamConv {
            conv: Some(conversation),
            appdata_ptr: state.cast(),
        };
        let mut handle: *mut PamHandle = ptr::null_mut();
        // SAFETY: all pointers are valid NUL-terminated strings or live
        // structs for the duration of the call.
        let rc = unsafe {
            pam_start_confdir(
                c_service.as_ptr(),
                c_user.as_ptr(),
                &conv,
                c_confdir.as_ptr(),
                &mut handle,
            )
        };
        if rc != PAM_SUCCESS || handle.is_null() {
            // SAFETY: `state` came from Box::into_raw above and libpam did
            // not keep it (no handle).
            drop(unsafe { Box::from_raw(state) });
            return Err(rc);
        }
        Ok(Pam {
            handle,
            state,
            last: PAM_SUCCESS,
        })
    }

    /// `pam_set_item` with a string item (PAM_RHOST, PAM_TTY, PAM_RUSER, ...).
    pub fn set_item(&mut self, item: c_int, value: &str) -> c_int {
        let value = CString::new(value).expect("item contains NUL");
        // SAFETY: libpam copies string items.
        unsafe { pam_set_item(self.handle, item, value.as_ptr().cast()) }
    }

    pub fn set_rhost(&mut self, rhost: &str) -> &mut Self {
        let rc = self.set_item(PAM_RHOST, rhost);
        assert_eq!(rc, PAM_SUCCESS, "pam_set_item(PAM_RHOST)");
        self
    }

    pub fn set_tty(&mut self, tty: &str) -> &mut Self {
        let rc = self.set_item(PAM_TTY, tty);
        assert_eq!(rc, PAM_SUCCESS, "pam_set_item(PAM_TTY)");
        self
    }

    /// `pam_authenticate(flags)`; returns the PAM code as libpam gave it.
    pub fn authenticate(&mut self, flags: c_int) -> c_int {
        // SAFETY: the handle is live until Drop.
        let rc = unsafe { pam_authenticate(self.handle, flags) };
        self.after_call(rc)
    }

    /// `pam_acct_mgmt(flags)`.
    pub fn acct_mgmt(&mut self, flags: c_int) -> c_int {
        // SAFETY: the handle is live until Drop.
        let rc = unsafe { pam_acct_mgmt(self.handle, flags) };
        self.after_call(rc)
    }

    fn after_call(&mut self, rc: c_int) -> c_int {
        self.last = rc;
        // SAFETY: no libpam call is running, so nothing else touches state.
        let state = unsafe { &mut *self.state };
        if let Some(panic) = state.panic.take() {
            // Re-raise the test's own panic now that we are out of C.
            resume_unwind(panic);
        }
        rc
    }

    /// Everything said in the conversation so far.
    pub fn transcript(&self) -> &Transcript {
        // SAFETY: no libpam call is running while `&self` is borrowed.
        unsafe { &(*self.state).transcript }
    }

    /// `pam_strerror` for a code.
    pub fn strerror(&self, code: c_int) -> String {
        // SAFETY: pam_strerror returns a static string (or NULL).
        let s = unsafe { pam_strerror(self.handle, code) };
        if s.is_null() {
            return String::new();
        }
        // SAFETY: non-NULL, NUL-terminated static string.
        unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned()
    }

    /// `pam_end` with the last status; returns its result.
    pub fn end(mut self) -> c_int {
        self.end_inner()
    }

    fn end_inner(&mut self) -> c_int {
        if self.handle.is_null() {
            return PAM_SUCCESS;
        }
        // SAFETY: the handle is live; afterwards libpam no longer uses state.
        let rc = unsafe { pam_end(self.handle, self.last) };
        self.handle = ptr::null_mut();
        rc
    }
}

impl Drop for Pam<'_> {
    fn drop(&mut self) {
        self.end_inner();
        if !self.state.is_null() {
            // SAFETY: from Box::into_raw in `start`; pam_end has run.
            drop(unsafe { Box::from_raw(self.state) });
            self.state = ptr::null_mut();
        }
    }
}

/// The result of one `pam_authenticate`.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub code: c_int,
    pub transcript: Transcript,
}

impl Outcome {
    /// Panics with the transcript unless libpam returned `expected`.
    pub fn assert_code(&self, expected: c_int) -> &Self {
        assert_eq!(
            self.code,
            expected,
            "pam_authenticate returned {} ({}), expected {} ({}); conversation:\n{}",
            code_name(self.code),
            self.code,
            code_name(expected),
            expected,
            self.transcript
        );
        self
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} ({})", code_name(self.code), self.code)?;
        write!(f, "{}", self.transcript)
    }
}

/// Start, authenticate once with no flags, end. Panics if `pam_start` fails.
pub fn authenticate(
    service: &str,
    user: &str,
    confdir: &Path,
    responder: impl FnMut(&Prompt<'_>) -> Option<String>,
) -> Outcome {
    let mut pam = Pam::start(service, user, confdir, responder)
        .unwrap_or_else(|rc| panic!("pam_start_confdir failed: {} ({rc})", code_name(rc)));
    let code = pam.authenticate(0);
    let transcript = pam.transcript().clone();
    pam.end();
    Outcome { code, transcript }
}

/// The conversation function libpam calls. Never unwinds.
unsafe extern "C" fn conversation(
    num_msg: c_int,
    msg: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    appdata_ptr: *mut c_void,
) -> c_int {
    if appdata_ptr.is_null() || resp.is_null() || msg.is_null() {
        return PAM_CONV_ERR;
    }
    let state = appdata_ptr.cast::<ConvState<'_>>();
    let result = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: libpam passes back our own appdata pointer; no other
        // reference to the state exists while libpam is in a call.
        unsafe { converse(num_msg, msg, resp, &mut *state) }
    }));
    match result {
        Ok(rc) => rc,
        Err(panic) => {
            // SAFETY: as above; the closure's borrow ended with the unwind.
            let state = unsafe { &mut *state };
            state.panic.get_or_insert(panic);
            // SAFETY: resp is a valid out-pointer.
            unsafe { *resp = ptr::null_mut() };
            PAM_CONV_ERR
        }
    }
}

/// Frees a partly filled reply array (zeroing answers first: they may be
/// passwords or codes).
unsafe fn free_replies(replies: *mut PamResponse, n: usize) {
    for i in 0..n {
        // SAFETY: `replies` has `n` zero-initialised or filled entries.
        let r = unsafe { &mut *replies.add(i) };
        if !r.resp.is_null() {
            // SAFETY: strdup'd, NUL-terminated.
            let len = unsafe { libc::strlen(r.resp) };
            unsafe { ptr::write_bytes(r.resp, 0, len) };
            unsafe { libc::free(r.resp.cast()) };
            r.resp = ptr::null_mut();
        }
    }
    // SAFETY: allocated with calloc.
    unsafe { libc::free(replies.cast()) };
}

unsafe fn converse(
    num_msg: c_int,
    msg: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    state: &mut ConvState<'_>,
) -> c_int {
    // SAFETY: resp is a valid out-pointer.
    unsafe { *resp = ptr::null_mut() };
    if num_msg <= 0 || num_msg > PAM_MAX_NUM_MSG {
        return PAM_CONV_ERR;
    }
    let n = num_msg as usize;
    // SAFETY: plain allocation; libpam frees the array with free().
    let replies =
        unsafe { libc::calloc(n, std::mem::size_of::<PamResponse>()) }.cast::<PamResponse>();
    if replies.is_null() {
        return PAM_BUF_ERR;
    }
    for i in 0..n {
        // Linux-PAM passes an array of pointers to messages.
        // SAFETY: libpam guarantees `num_msg` valid message pointers.
        let m = unsafe { *msg.add(i) };
        if m.is_null() {
            unsafe { free_replies(replies, n) };
            return PAM_CONV_ERR;
        }
        // SAFETY: m points at a valid pam_message.
        let (style, text) = unsafe {
            let m = &*m;
            let text = if m.msg.is_null() {
                String::new()
            } else {
                CStr::from_ptr(m.msg).to_string_lossy().into_owned()
            };
            (Style::from_raw(m.msg_style), text)
        };
        state.transcript.entries.push(Entry {
            style,
            text,
            answer: None,
        });
        match style {
            Style::ErrorMsg | Style::TextInfo => {}
            Style::EchoOff | Style::EchoOn => {
                state.prompts += 1;
                if state.prompts > MAX_PROMPTS_PER_HANDLE {
                    unsafe { free_replies(replies, n) };
                    return PAM_CONV_ERR;
                }
                let index = state.prompts - 1;
                let answer = {
                    let ConvState {
                        responder,
                        transcript,
                        ..
                    } = &mut *state;
                    let last = transcript.entries.last().expect("just pushed");
                    responder(&Prompt {
                        style,
                        text: &last.text,
                        index,
                        transcript,
                    })
                };
                let Some(answer) = answer else {
                    unsafe { free_replies(replies, n) };
                    return PAM_CONV_ERR;
                };
                let Ok(c_answer) = CString::new(answer.as_str()) else {
                    unsafe { free_replies(replies, n) };
                    return PAM_CONV_ERR;
                };
                if let Some(last) = state.transcript.entries.last_mut() {
                    last.answer = Some(answer);
                }
                // SAFETY: strdup copies into C-allocated memory libpam frees.
                let dup = unsafe { libc::strdup(c_answer.as_ptr()) };
                if dup.is_null() {
                    unsafe { free_replies(replies, n) };
                    return PAM_BUF_ERR;
                }
                // SAFETY: i < n.
                unsafe { (*replies.add(i)).resp = dup };
            }
            Style::Other(_) => {
                unsafe { free_replies(replies, n) };
                return PAM_CONV_ERR;
            }
        }
    }
    // SAFETY: resp is a valid out-pointer; ownership passes to libpam.
    unsafe { *resp = replies };
    PAM_SUCCESS
}
