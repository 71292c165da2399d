//! Message and payload templates: `Template::parse` (placeholders, legacy
//! `$ctx.*`, allowed sets) and `render`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smsotp_config::{Template, Var};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let allowed: &[Var] = match sel % 3 {
        0 => &Var::MESSAGE,
        1 => &Var::PAYLOAD,
        _ => &Var::ALL,
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let Ok(t) = Template::parse(text, allowed) else {
        return;
    };
    let mut seen = Vec::new();
    let marked = t.render(|v, out| {
        assert!(
            allowed.contains(&v),
            "rendered a placeholder that is not allowed"
        );
        seen.push(v);
        out.push('\u{0}');
    });
    for v in Var::ALL {
        assert_eq!(t.uses(v), seen.contains(&v), "uses() disagrees with render");
    }
    // Literal text is copied as is: with empty values nothing is added, and
    // each placeholder adds exactly its value.
    let empty = t.render(|_, _| {});
    assert!(empty.len() <= text.len());
    assert_eq!(marked.len(), empty.len() + seen.len());
    // Debug shows the placeholders only (literal text may be a credential).
    let names: Vec<&str> = seen.iter().map(|v| v.name()).collect();
    assert_eq!(format!("{t:?}"), format!("Template {{ vars: {names:?} }}"));
});
