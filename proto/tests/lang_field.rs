//! The challenge's `lang` and `can_call` (protocol 4) are additive: answers
//! of older daemons (no field) still parse, and a client of protocol 3,
//! whose strict parsing refuses unknown fields, never gets them.

use smsotp_proto::{ChallengeInfo, CodeAlphabet, MaskedMobile, Response};

fn challenge(lang: Option<&str>, can_call: bool) -> Response {
    Response::Challenge(ChallengeInfo {
        masked_mobile: MaskedMobile::new("*******4567").unwrap(),
        expires_in_secs: 300,
        resends_left: 3,
        attempts_left: 3,
        code_length: 6,
        alphabet: CodeAlphabet::Numeric,
        sms_sent: true,
        backup_allowed: false,
        notice: None,
        show_reasons: true,
        lang: lang.map(str::to_string),
        can_call,
    })
}

#[test]
fn an_answer_without_lang_parses_as_none() {
    // Exactly what a protocol-3 daemon writes.
    let json = r#"{"type":"challenge","masked_mobile":"*******4567","expires_in_secs":300,"resends_left":3,"attempts_left":3,"code_length":6,"alphabet":"numeric","sms_sent":true,"backup_allowed":false,"notice":null,"show_reasons":true}"#;
    let r: Response = serde_json::from_str(json).unwrap();
    assert_eq!(r, challenge(None, false));
    // And None is not written at all, so the shape stays protocol 3's.
    assert_eq!(
        serde_json::to_string(&challenge(None, false)).unwrap(),
        json
    );
}

#[test]
fn lang_and_can_call_round_trip_for_protocol_4_and_are_dropped_for_3() {
    let r = challenge(Some("de-AT"), true);
    let json = serde_json::to_string(&r.clone().for_version(4)).unwrap();
    assert!(
        json.ends_with(r#""show_reasons":true,"lang":"de-AT","can_call":true}"#),
        "{json}"
    );
    assert_eq!(serde_json::from_str::<Response>(&json).unwrap(), r);
    let old = serde_json::to_string(&r.for_version(3)).unwrap();
    assert!(!old.contains("lang") && !old.contains("can_call"), "{old}");
    // Other answers pass through untouched.
    assert_eq!(Response::AskMobile.for_version(3), Response::AskMobile);
}
