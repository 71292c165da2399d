//! The user's language end to end, through real libpam and the outbox: a
//! German user gets a German SMS and German prompts, a French one French;
//! `de-AT` falls back to `de`; a language without a template gets the
//! default SMS and English prompts; a UCS-2 template is counted as such;
//! bad tags and templates too long for `message.max_segments` are config
//! errors; a protocol-3 client gets its challenge without `lang`.

use smsotp_proto::{BeginRequest, Request, Response};
use smsotp_tests::daemon::{toml_str, Daemon, DaemonBuilder};
use smsotp_tests::libpam::{self, Outcome, PAM_SUCCESS};
use smsotp_tests::outbox::Outbox;
use smsotp_tests::pamd::PamConfDir;
use smsotp_tests::wire::{exchange, frame, request_frame};
use smsotp_tests::{require_root, unique_name};
use std::time::Duration;

const SERVICE: &str = "smsotp-lang";
const MOBILE: &str = "+4915112345678";
const DE_SMS: &str =
    "Ihr Anmeldecode für {{host}} lautet {{code}}. Gültig für {{expiry_minutes}} Minuten.";
const FR_SMS: &str =
    "Votre code de connexion pour {{host}} est {{code}}. Il expire dans {{expiry_minutes}} minutes.";
const RU_SMS: &str = "Ваш код для входа на сервер {{host}}: {{code}}. Он действует {{expiry_minutes}} минут. Никому его не сообщайте.";

const DE_PROMPT: &str =
    "Code an *********5678 gesendet (läuft in 5 Min. ab). Code eingeben oder 'r' für einen neuen: ";
const FR_PROMPT: &str = "Code envoyé au *********5678 (expire dans 5 min). Saisissez le code, ou 'r' pour en recevoir un nouveau : ";
const EN_PROMPT: &str =
    "Code sent to *********5678 (expires in 5 min). Enter code, or 'r' to resend: ";

/// German, French and Russian templates beside the English default.
fn daemon() -> DaemonBuilder {
    Daemon::builder()
        .section(
            "message.lang.de",
            &format!("template = {}", toml_str(DE_SMS)),
        )
        .section(
            "message.lang.fr",
            &format!("template = {}", toml_str(FR_SMS)),
        )
        .section(
            "message.lang.ru",
            &format!("template = {}", toml_str(RU_SMS)),
        )
}

/// The one run of six digits in an SMS body, whatever its language.
fn code_in(body: &str) -> String {
    let runs: Vec<&str> = body
        .split(|c: char| !c.is_ascii_digit())
        .filter(|r| r.len() == 6)
        .collect();
    assert_eq!(runs.len(), 1, "one code in {body:?}");
    runs[0].to_string()
}

/// A user of `lang` (raw TOML value, or none) logs in: a wrong code first,
/// then the right one. Returns the outcome and the SMS bodies.
fn login(builder: DaemonBuilder, lang: Option<&str>) -> (Outcome, Vec<String>, Daemon) {
    require_root("only root may ask the daemon for another user's code");
    let user = unique_name("lang");
    let entry = match lang {
        Some(l) => format!(
            "{{ mobile = {}, lang = {} }}",
            toml_str(MOBILE),
            toml_str(l)
        ),
        None => toml_str(MOBILE),
    };
    let d = builder.user_line(&user, &entry).start();
    let pamd = PamConfDir::new();
    pamd.smsotp_service(SERVICE, &d.socket(), "timeout=10");
    let outbox: Outbox = d.outbox();
    let mut answers = 0;
    let outcome = libpam::authenticate(SERVICE, &user, pamd.path(), |_| {
        answers += 1;
        let code = code_in(&outbox.last().body);
        Some(if answers == 1 {
            smsotp_tests::outbox::wrong_code(&code)
        } else {
            code
        })
    });
    let bodies = outbox.read().into_iter().map(|s| s.body).collect();
    (outcome, bodies, d)
}

/// A user of `lang` logs in (wrong code, then right): both prompts are
/// `prompt`, the one error `wrong`, and the one SMS `template` filled in.
fn assert_lang(
    builder: DaemonBuilder,
    lang: Option<&str>,
    prompt: &str,
    wrong: &str,
    template: &str,
) -> Daemon {
    let (outcome, bodies, d) = login(builder, lang);
    outcome.assert_code(PAM_SUCCESS);
    // Two rounds, both the module's prompt in the user's language (also
    // the guard against libpam falling back to /etc/pam.d/other).
    assert_eq!(
        outcome.transcript.prompts(),
        vec![prompt, prompt],
        "{outcome}"
    );
    assert_eq!(outcome.transcript.errors(), vec![wrong], "{outcome}");
    assert_eq!(bodies.len(), 1, "exactly one SMS: {bodies:?}");
    let filled = template
        .replace("{{host}}", "testhost")
        .replace("{{code}}", &code_in(&bodies[0]))
        .replace("{{expiry_minutes}}", "5");
    assert_eq!(bodies[0], filled);
    d
}

const DE_WRONG: &str = "Falscher Code. Noch 2 Versuche.";
const FR_WRONG: &str = "Code erroné. Encore 2 essais.";
const EN_WRONG: &str = "Wrong code. 2 tries left.";
const EN_SMS: &str =
    "Your login code for {{host}} is {{code}}. It expires in {{expiry_minutes}} minutes.";

#[test]
fn german_user_gets_a_german_sms_and_german_prompts() {
    let d = assert_lang(daemon(), Some("de"), DE_PROMPT, DE_WRONG, DE_SMS);
    // ü is in GSM 03.38: still one GSM-7 segment.
    let log = d.log();
    assert!(log.contains("segments=1 encoding=\"GSM-7\""), "{log}");
    d.assert_log_clean(&[MOBILE]);
}

#[test]
fn french_canadian_user_gets_the_french_sms_and_french_prompts() {
    // No fr-CA table: fr-CA -> fr.
    assert_lang(daemon(), Some("fr-CA"), FR_PROMPT, FR_WRONG, FR_SMS);
}

#[test]
fn austrian_german_falls_back_to_german() {
    assert_lang(daemon(), Some("de-AT"), DE_PROMPT, DE_WRONG, DE_SMS);
}

#[test]
fn a_language_without_template_or_catalogue_gets_the_default_sms_and_english() {
    assert_lang(daemon(), Some("it"), EN_PROMPT, EN_WRONG, EN_SMS);
}

#[test]
fn users_without_a_language_get_message_default_lang() {
    // The default template is French here, and so is the module.
    let builder = Daemon::builder()
        .message("default_lang = \"fr\"")
        .message(&format!("template = {}", toml_str(FR_SMS)));
    assert_lang(builder, None, FR_PROMPT, FR_WRONG, FR_SMS);
}

#[test]
fn a_cyrillic_template_is_sent_and_counted_as_ucs2() {
    // The module has no Russian: English prompts, Russian SMS.
    let d = assert_lang(daemon(), Some("ru"), EN_PROMPT, EN_WRONG, RU_SMS);
    // 92 UTF-16 units: two UCS-2 segments (one would hold 70).
    let log = d.log();
    assert!(log.contains("segments=2 encoding=\"UCS-2\""), "{log}");
}

#[test]
fn templates_longer_than_max_segments_and_bad_tags_are_config_errors() {
    let (status, err) = daemon().message("max_segments = 1").check_config();
    assert_ne!(status, Some(0), "{err}");
    assert!(
        err.contains("message.lang.ru.template: at its longest this text takes 2 UCS-2 SMS segments (92 UTF-16 units), more than message.max_segments = 1"),
        "{err}"
    );
    assert_eq!(
        daemon().message("max_segments = 2").check_config().0,
        Some(0)
    );

    let (status, err) = Daemon::builder()
        .section("message.lang.de_DE", "template = \"{{code}}\"")
        .check_config();
    assert_ne!(status, Some(0), "{err}");
    assert!(
        err.contains("smsotpd.toml:")
            && err.contains(": message.lang.de_DE: \"de_DE\" is not a language tag"),
        "{err}"
    );

    let (status, err) = Daemon::builder()
        .user_line(
            "alice",
            "{ mobile = \"+4915112345678\", lang = \"deutsch\" }",
        )
        .check_config();
    assert_ne!(status, Some(0), "{err}");
    assert!(
        err.contains("users.toml:2: users.alice.lang: \"deutsch\" is not a language tag"),
        "{err}"
    );
}

/// Hello with `version`, then begin; the challenge's `lang`.
fn challenge_lang(d: &Daemon, user: &str, version: u32) -> Option<String> {
    let mut data = request_frame(&Request::Hello {
        version,
        client: "smsotp-tests-lang".into(),
    });
    data.extend(request_frame(&Request::Begin(BeginRequest {
        user: user.into(),
        service: SERVICE.into(),
        rhost: None,
        tty: None,
        command: None,
    })));
    let reply = exchange(
        &d.root_socket(),
        data,
        Duration::from_secs(10),
        Duration::from_millis(300),
    );
    let frames: Vec<Response> = reply.frames.into_iter().map(|f| f.unwrap()).collect();
    match frames.as_slice() {
        [Response::Hello { version: v, .. }, Response::Challenge(info)] => {
            assert_eq!(*v, version, "the daemon answers in the client's protocol");
            info.lang.clone()
        }
        other => panic!("protocol {version}: {other:?}"),
    }
}

#[test]
fn protocol_3_clients_get_no_lang_and_4_gets_it() {
    require_root("the root socket");
    let user = unique_name("proto");
    let d = daemon()
        .user_line(
            &user,
            &format!("{{ mobile = {}, lang = \"de-AT\" }}", toml_str(MOBILE)),
        )
        .start();
    assert_eq!(challenge_lang(&d, &user, 4).as_deref(), Some("de-AT"));
    // A running sshd may still hold a module of protocol 3, whose strict
    // parsing would refuse the field: the daemon leaves it out.
    assert_eq!(challenge_lang(&d, &user, 3), None);
    let sent = d.outbox().read();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(
        sent.iter().all(|s| s.body.starts_with("Ihr Anmeldecode")),
        "{sent:?}"
    );
    // Protocol 2 is refused as before.
    let old = exchange(
        &d.root_socket(),
        frame(br#"{"type":"hello","version":2,"client":"old"}"#),
        Duration::from_secs(5),
        Duration::from_millis(300),
    );
    assert!(
        matches!(old.frames.first(), Some(Ok(Response::Error { .. }))),
        "{old:?}"
    );
}
