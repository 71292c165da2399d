//! The challenge's `lang` picks the texts of everything after it.

use super::*;

fn in_lang(lang: Option<&str>) -> Response {
    Response::Challenge(ChallengeInfo {
        lang: lang.map(str::to_string),
        ..info(300, 3)
    })
}

#[test]
fn german_challenge_german_prompts_and_messages() {
    let r = secure(
        [Text("111111"), Text("r"), Text(CODE)],
        [
            Ok(in_lang(Some("de-AT"))),
            Ok(Response::Wrong { attempts_left: 2 }),
            Ok(Response::ResendRefused {
                reason: "limit reached".into(),
            }),
            Ok(verified()),
        ],
    );
    assert_eq!(r.code, PamResultCode::PAM_SUCCESS);
    let de = "Code an *******4567 gesendet (läuft in 5 Min. ab). Code eingeben oder 'r' für einen neuen: ";
    assert_eq!(r.conv.prompts, vec![de, de, de]);
    assert_eq!(
        r.conv.errors,
        vec![
            "Falscher Code. Noch 2 Versuche.",
            "Kein weiterer Code möglich: limit reached"
        ]
    );
}

#[test]
fn french_lock_message() {
    let r = secure(
        [Text("111111")],
        [
            Ok(in_lang(Some("fr"))),
            Ok(Response::Locked {
                retry_after_secs: 900,
            }),
        ],
    );
    assert_eq!(r.code, PamResultCode::PAM_AUTH_ERR);
    assert_eq!(
        r.conv.errors,
        vec!["Trop de codes erronés : les codes SMS sont bloqués pour ce compte pendant 15 min."]
    );
}

#[test]
fn unknown_or_absent_language_is_english() {
    for lang in [Some("it"), Some("x".repeat(5000).as_str()), None] {
        let r = secure(
            [Text("111111"), Text(CODE)],
            [
                Ok(in_lang(lang)),
                Ok(Response::Wrong { attempts_left: 1 }),
                Ok(verified()),
            ],
        );
        assert_eq!(r.conv.prompts, vec![PROMPT, PROMPT]);
        assert_eq!(r.conv.errors, vec!["Wrong code. 1 try left."]);
    }
}
