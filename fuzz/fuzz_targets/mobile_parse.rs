//! E.164 numbers (`Mobile::parse`), masking, and the protocol's
//! `MaskedMobile` (what a prompt may show).
#![no_main]

use libfuzzer_sys::fuzz_target;
use smsotp_config::Mobile;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(m) = Mobile::parse(s) {
        assert_eq!(m.e164(), s);
        let d = m.digits();
        assert!(d.bytes().all(|b| b.is_ascii_digit()));
        assert!((7..=15).contains(&d.len()));
        for visible in [0usize, 1, 4, 15, 100] {
            let masked = m.masked(visible);
            let shown = visible.min(d.len());
            assert_eq!(masked.len(), d.len());
            assert!(masked.ends_with(&d[d.len() - shown..]));
            assert_eq!(
                masked.bytes().filter(|&b| b == b'*').count(),
                d.len() - shown
            );
        }
        let dbg = format!("{m:?}");
        assert!(!dbg.contains(d), "Debug shows the full number");
    }
    if let Some(masked) = smsotp_proto::MaskedMobile::new(s) {
        let _ = format!("{masked:?} {}", masked.as_str());
    }
});
