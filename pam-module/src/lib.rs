//! `pam_smsotp.so`: after the password step, asks `smsotpd` to send an SMS
//! code and lets the login through only when the daemon confirms it.
//!
//! This file is the FFI shell: `pam_hooks!` generates the `pam_sm_*`
//! entry points and wraps each in `catch_unwind`, so this module adds no
//! panic handling of its own. The logic lives in [`flow`], which never
//! touches libpam and is tested with scripted fakes.
//!
//! The module runs inside sshd and sudo: no async runtime, no threads, no
//! state kept between calls, every socket operation under a deadline.

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]

mod flow;
mod messages;
mod options;
mod pam_glue;
mod prompt;
mod sudo_cmd;
mod syslog;

use pam::constants::{PamFlag, PamResultCode, PAM_SILENT};
use pam::conv::Conv;
use pam::module::{PamHandle, PamHooks};
use smsotp_proto::Client;
use std::ffi::CStr;
use syslog::{Level, Log, Syslog};

struct SmsOtp;
pam::pam_hooks!(SmsOtp);

impl PamHooks for SmsOtp {
    fn sm_authenticate(pamh: &mut PamHandle, args: Vec<&CStr>, flags: PamFlag) -> PamResultCode {
        authenticate(pamh, &args, flags)
    }

    /// The module grants no credentials, but libpam calls setcred on every
    /// module of the auth stack after a successful authenticate, and a
    /// stack whose modules all answer PAM_IGNORE makes pam_setcred fail.
    fn sm_setcred(_: &mut PamHandle, _: Vec<&CStr>, _: PamFlag) -> PamResultCode {
        PamResultCode::PAM_SUCCESS
    }

    // acct_mgmt, chauthtok, open_session and close_session keep
    // pam-bindings' default of PAM_IGNORE: the module only authenticates.
}

fn authenticate(pamh: &mut PamHandle, args: &[&CStr], flags: PamFlag) -> PamResultCode {
    let parsed = match options::parse(args.iter().map(|a| a.to_bytes())) {
        Ok(parsed) => parsed,
        Err(e) => {
            // A broken pam.d line is the administrator's to fix; guessing a
            // value could silently weaken the login.
            Syslog::new(pamh, false)
                .log(Level::Warning, &format!("smsotp: bad module option: {e}"));
            return PamResultCode::PAM_SERVICE_ERR;
        }
    };
    let opts = parsed.options;
    for unknown in &parsed.unknown {
        Syslog::new(pamh, opts.debug).log(
            Level::Notice,
            &format!("smsotp: ignoring unknown module option {unknown:?}"),
        );
    }

    let begin = match pam_glue::begin_request(pamh) {
        Ok(begin) => begin,
        Err(e) => {
            Syslog::new(pamh, opts.debug).log(Level::Notice, &format!("smsotp: {e}"));
            return match e {
                pam_glue::GlueError::User(code) => code,
                pam_glue::GlueError::BadUser(_) => PamResultCode::PAM_USER_UNKNOWN,
            };
        }
    };

    let conv = match pamh.get_item::<Conv>() {
        Ok(Some(conv)) => conv,
        Ok(None) | Err(_) => {
            Syslog::new(pamh, opts.debug).log(Level::Warning, "smsotp: no conversation function");
            return PamResultCode::PAM_CONV_ERR;
        }
    };
    let mut conversation = pam_glue::PamConversation::new(conv, flags & PAM_SILENT != 0);
    let mut log = Syslog::new(pamh, opts.debug);
    let sockets = opts.sockets_for(smsotp_proto::sockets::euid());
    flow::authenticate(&mut conversation, &mut log, opts.failmode, begin, || {
        Client::connect_any(&sockets, opts.timeout, flow::CLIENT_NAME)
    })
}
