//! users.toml (`Users::parse`): login -> E.164 number.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smsotp_config::Users;
use std::path::Path;

const PATH: &str = "/etc/smsotp/users.toml";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Users::parse(Path::new(PATH), text) {
        Ok(users) => {
            let _ = users.len();
            // Debug shows numbers masked: no run of 7+ digits from a number.
            let dbg = format!("{users:?}");
            for line in text.lines() {
                if let Some((name, _)) = line.split_once('=') {
                    let name = name.trim().trim_matches('"');
                    if let Some(m) = users.mobile(name) {
                        assert!(
                            !dbg.contains(m.digits()),
                            "Debug of Users shows a full number"
                        );
                    }
                }
            }
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.starts_with(PATH), "error without the file name: {msg}");
        }
    }
});
