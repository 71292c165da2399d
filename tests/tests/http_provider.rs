//! The `http` provider against a loopback capture server: JSON and form
//! payloads, `$ctx.num`/`$ctx.msg` in a GET query, odd header values, and a
//! provider that fails.

use smsotp_tests::daemon::{toml_str, Daemon};
use smsotp_tests::flows::*;
use smsotp_tests::http_capture::{pair, Captured, HttpCapture};
use smsotp_tests::libpam::{self, Outcome, PAM_AUTHINFO_UNAVAIL, PAM_SUCCESS};
use smsotp_tests::outbox::extract_code;
use smsotp_tests::pamd::PamConfDir;
use smsotp_tests::{require_root, unique_name};
use std::time::Duration;

const MOBILE: &str = "+15559876543";
const SERVICE: &str = "smsotp-http";
const ODD_HEADER: &str = "a:b, c=d; e";

/// Starts a daemon whose only provider is `provider` (a raw TOML block),
/// logs `user` in, answering each prompt with the code found by `code_of`
/// in the newest captured request.
fn login_through(
    cap: &HttpCapture,
    provider: &str,
    code_of: impl Fn(&Captured) -> String,
) -> (Outcome, Daemon, String) {
    require_root("only root may ask the daemon for another user's code");
    let user = unique_name("web");
    let d = Daemon::builder()
        .user(&user, MOBILE)
        .provider(provider)
        .start();
    let pamd = PamConfDir::new();
    pamd.smsotp_service(SERVICE, &d.socket(), "timeout=15");
    let mut last_code = String::new();
    let outcome = libpam::authenticate(SERVICE, &user, pamd.path(), |p| {
        assert!(p.text.starts_with("Code sent to "), "{}", p.transcript);
        let reqs = cap.wait_for(1, Duration::from_secs(5));
        last_code = code_of(reqs.last().unwrap());
        Some(last_code.clone())
    });
    (outcome, d, last_code)
}

#[test]
fn json_payload_and_odd_headers() {
    let cap = HttpCapture::start(202, r#"{"sid":"SM1"}"#);
    let provider = format!(
        "type = \"http\"\nurl = {}\nmethod = \"POST\"\ncontent_type = \"json\"\n\
         payload = '{{\"to\": {{{{mobile}}}}, \"text\": {{{{body}}}}}}'\n\
         headers = {{ Authorization = \"Bearer t0k3n\", \"X-Odd\" = {} }}\n\
         success_codes = [202]\ntimeout_seconds = 5\n",
        toml_str(&cap.url("/sms")),
        toml_str(ODD_HEADER),
    );
    let (outcome, d, code) = login_through(&cap, &provider, |r| {
        let text = r.json()["text"]
            .as_str()
            .expect("text is a string")
            .to_string();
        extract_code(&text).expect("code in text")
    });
    outcome.assert_code(PAM_SUCCESS);
    assert_code_prompted(&outcome);
    let reqs = cap.requests();
    assert_eq!(reqs.len(), 1, "{reqs:#?}");
    let r = &reqs[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.target, "/sms");
    assert_eq!(r.header("authorization"), Some("Bearer t0k3n"));
    assert_eq!(r.header("x-odd"), Some(ODD_HEADER), "{r:#?}");
    assert!(
        r.header("content-type")
            .is_some_and(|v| v.starts_with("application/json")),
        "{r:#?}"
    );
    let json = r.json();
    assert_eq!(json["to"], MOBILE, "{json}");
    assert_eq!(
        json["text"],
        format!("Your login code for testhost is {code}. It expires in 5 minutes.")
    );
    assert!(
        !d.outbox().path().exists(),
        "no outbox provider was configured"
    );
    d.assert_log_clean(&[&code, "t0k3n"]);
}

#[test]
fn form_payload() {
    let cap = HttpCapture::start(200, "{}");
    let provider = format!(
        "type = \"http\"\nurl = {}\ncontent_type = \"form\"\n\
         payload = 'to={{{{mobile}}}}&text={{{{body}}}}&from=smsotp'\ntimeout_seconds = 5\n",
        toml_str(&cap.url("/form")),
    );
    let (outcome, d, code) = login_through(&cap, &provider, |r| {
        extract_code(pair(&r.form(), "text").expect("text field")).expect("code in text")
    });
    outcome.assert_code(PAM_SUCCESS);
    assert_code_prompted(&outcome);
    let r = &cap.requests()[0];
    assert_eq!(r.method, "POST", "POST is the default method");
    assert_eq!(r.path(), "/form");
    assert!(
        r.header("content-type")
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded")),
        "{r:#?}"
    );
    let form = r.form();
    assert_eq!(pair(&form, "to"), Some(MOBILE), "{}", r.body_text());
    assert_eq!(pair(&form, "from"), Some("smsotp"));
    assert_eq!(
        pair(&form, "text"),
        Some(format!("Your login code for testhost is {code}. It expires in 5 minutes.").as_str())
    );
    d.assert_log_clean(&[&code]);
}

#[test]
fn legacy_placeholders_in_a_get_query() {
    let cap = HttpCapture::start(200, "{}");
    let provider = format!(
        "type = \"http\"\nurl = {}\nmethod = \"GET\"\ntimeout_seconds = 5\n",
        toml_str(&cap.url("/send?api_key=k&to=$ctx.num&text=$ctx.msg")),
    );
    let (outcome, d, code) = login_through(&cap, &provider, |r| {
        extract_code(pair(&r.query(), "text").expect("text in query")).expect("code in text")
    });
    outcome.assert_code(PAM_SUCCESS);
    assert_code_prompted(&outcome);
    let r = &cap.requests()[0];
    assert_eq!(r.method, "GET");
    assert_eq!(r.path(), "/send");
    assert!(
        r.body.is_empty(),
        "GET without payload sends no body: {r:#?}"
    );
    let q = r.query();
    assert_eq!(pair(&q, "api_key"), Some("k"));
    // `+` must arrive encoded, or it would decode as a space.
    assert_eq!(pair(&q, "to"), Some(MOBILE), "raw target {:?}", r.target);
    assert_eq!(
        pair(&q, "text"),
        Some(format!("Your login code for testhost is {code}. It expires in 5 minutes.").as_str())
    );
    d.assert_log_clean(&[&code]);
}

#[test]
fn provider_error_is_send_failed() {
    require_root("only root may ask the daemon for another user's code");
    let cap = HttpCapture::start(500, r#"{"error":"boom"}"#);
    let user = unique_name("web500");
    let d = Daemon::builder()
        .user(&user, MOBILE)
        .provider(&format!(
            "type = \"http\"\nurl = {}\npayload = '{{\"to\": {{{{mobile}}}}, \"text\": {{{{body}}}}}}'\n\
             timeout_seconds = 3\n",
            toml_str(&cap.url("/sms"))
        ))
        .start();
    let pamd = PamConfDir::new();
    pamd.smsotp_service(SERVICE, &d.socket(), "timeout=30");
    let outcome = libpam::authenticate(SERVICE, &user, pamd.path(), |p| {
        panic!(
            "no prompt when the code could not be sent:\n{}",
            p.transcript
        )
    });
    outcome.assert_code(PAM_AUTHINFO_UNAVAIL);
    assert_eq!(
        outcome.transcript.errors(),
        vec![MSG_SEND_FAILED],
        "{outcome}"
    );
    let reqs = cap.requests();
    assert!(
        (1..=5).contains(&reqs.len()),
        "the provider was tried (retries bounded): {} request(s)",
        reqs.len()
    );
    // The codes that were never delivered must not be in the log either.
    let codes: Vec<String> = reqs
        .iter()
        .filter_map(|r| r.json()["text"].as_str().and_then(extract_code))
        .collect();
    let codes: Vec<&str> = codes.iter().map(String::as_str).collect();
    d.assert_log_clean(&codes);
}
