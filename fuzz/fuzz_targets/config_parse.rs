//! The daemon config loader's text step (`smsotp_config::parse`): TOML,
//! raw structs refusing unknown keys, validation, error location.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

const PATH: &str = "/etc/smsotp/smsotpd.toml";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match smsotp_config::parse(Path::new(PATH), text) {
        Ok(cfg) => {
            let _ = format!("{cfg:?}");
        }
        Err(e) => {
            // Every error names the file.
            let msg = e.to_string();
            assert!(msg.starts_with(PATH), "error without the file name: {msg}");
        }
    }
});
