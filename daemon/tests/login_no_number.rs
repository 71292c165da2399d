//! Logins without a number, in-process (see `flow_support`): an unknown
//! name behind `hide_unknown_users` gets a challenge shaped like a real
//! one that sends nothing and is charged like a real one, and enrolment
//! at login stores a typed number only once its code is right.

mod flow_support;

use flow_support::{challenge, request, wrong, Flow, SMS_VERIFIED, START};
use smsotp_proto::{ChallengeInfo, Response};
use smsotpd::store::Store;

/// A name NSS does not know and users.toml does not list.
const NOBODY: &str = "smsotp-nobody";

const HIDDEN: &str = "[policy]\nhide_unknown_users = true\n";

/// `****` and then the last four digits, as every mask here is shown.
fn assert_masked(info: &ChallengeInfo) {
    let mask = info.masked_mobile.as_str();
    let (stars, shown) = mask.split_at(mask.len() - 4);
    assert!(
        stars.len() >= 6 && stars.chars().all(|c| c == '*'),
        "{mask}"
    );
    assert!(shown.chars().all(|c| c.is_ascii_digit()), "{mask}");
}

#[tokio::test]
async fn an_unknown_user_gets_a_real_looking_challenge_and_no_sms() {
    let f = Flow::new(HIDDEN);
    let (_, resp) = f.begin().await;
    let real = challenge(resp);
    let (_, resp) = f.begin_with(request(NOBODY, "sshd")).await;
    let fake = challenge(resp);
    assert_masked(&real);
    assert_masked(&fake);
    // All but the number are the same figures: expiry, tries, resends,
    // code shape, "an SMS went out", no backup codes, no notice.
    assert_eq!(
        ChallengeInfo {
            masked_mobile: real.masked_mobile,
            ..fake.clone()
        },
        real
    );
    // Only root's code went out; the fake one cost a store request too.
    assert_eq!((f.sent(), f.store.requests()), (1, 2));
    // The same name always sees the same number.
    let (_, resp) = f.begin_with(request(NOBODY, "sshd")).await;
    assert_eq!(challenge(resp).masked_mobile, fake.masked_mobile);
    assert_eq!(f.sent(), 1);
}

/// Two wrong codes lock, as for any user.
const LOCKING: &str = "[policy]\nhide_unknown_users = true\n\
                       [lockout]\nmax_failures = 2\nduration_seconds = 100\n\
                       [otp]\nmax_attempts = 5\n";

/// The answers to two wrong codes at `user`'s challenge, and the store
/// requests the login made.
async fn two_wrong(f: &Flow, user: &str) -> (Vec<Response>, u64) {
    let before = f.store.requests();
    let (login, resp) = f.begin_with(request(user, "sshd")).await;
    challenge(resp);
    let mut login = login.unwrap();
    // A fake challenge has no code: anything is wrong. root's is made so.
    let code = if user == NOBODY {
        "123456".to_string()
    } else {
        wrong(&f.last_code())
    };
    let mut out = Vec::new();
    for _ in 0..2 {
        out.push(login.verify(&f.state, &code).await.0);
    }
    (out, f.store.requests() - before)
}

#[tokio::test]
async fn an_unknown_users_guesses_are_charged_and_lock_like_a_real_users() {
    let f = Flow::new(LOCKING);
    let real = two_wrong(&f, "root").await;
    let fake = two_wrong(&f, NOBODY).await;
    // Begin, two guesses and the look that claims the owner's notice.
    assert_eq!(
        real,
        (
            vec![
                Response::Wrong { attempts_left: 4 },
                Response::Locked {
                    retry_after_secs: 100
                }
            ],
            4
        )
    );
    assert_eq!(fake, real);
    let lock = f.store.lock_state(NOBODY).await.unwrap().lock;
    assert_eq!((lock.locked_until, lock.lockouts), (Some(START + 100), 1));
    // The next Begin is refused for the rest of the lock, as root's is.
    f.clock.advance(40);
    for user in ["root", NOBODY] {
        let (_, resp) = f.begin_with(request(user, "sshd")).await;
        assert_eq!(
            resp,
            Response::Locked {
                retry_after_secs: 60
            },
            "{user}"
        );
    }
    // root's code and root's notice; nobody's number is nobody's.
    assert_eq!(f.sent_after_notices(2).await, 2);
}

#[tokio::test]
async fn an_unknown_users_sends_and_resends_pay_the_budgets_of_a_real_user() {
    let f =
        Flow::new("[policy]\nhide_unknown_users = true\n[send_budget]\nper_user_per_hour = 2\n");
    let mut answers = Vec::new();
    for user in ["root", NOBODY] {
        let (login, resp) = f.begin_with(request(user, "sshd")).await;
        challenge(resp);
        // The cooldown counts from this send, real or not.
        let (resend, _) = login.unwrap().resend(&f.state).await;
        let (_, resp) = f.begin_with(request(user, "sshd")).await;
        challenge(resp);
        let (_, third) = f.begin_with(request(user, "sshd")).await;
        answers.push((resend, third));
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(
        answers[0],
        (
            Response::ResendRefused {
                reason: "a code was sent moments ago; try again in 30 s".into()
            },
            Response::SendRefused {
                reason: "this account has had too many codes sent in the last hour".into(),
                retry_after_secs: Some(3640),
            }
        )
    );
    assert_eq!(f.sent(), 2, "root's two codes only");
}

const ENROLL: &str = "[policy]\nno_mobile = \"enroll\"\n";
const TYPED: &str = "+1 (555) 765-4321";
const TYPED_E164: &str = "+15557654321";

#[tokio::test]
async fn an_enrolled_number_is_stored_only_after_the_right_code() {
    let f = Flow::with_users("", ENROLL);
    let (login, resp) = f.begin().await;
    assert_eq!(resp, Response::AskMobile);
    let mut login = login.unwrap();
    let (resp, _) = login.enroll(&f.state, TYPED).await;
    assert_eq!(challenge(resp).masked_mobile.as_str(), "*******4321");
    assert_eq!(f.outbox()[0]["to"], TYPED_E164);

    let (resp, _) = login.verify(&f.state, &wrong(&f.last_code())).await;
    assert_eq!(resp, Response::Wrong { attempts_left: 2 });
    assert_eq!(f.store.mobile("root").await.unwrap(), None, "a wrong code");
    let (resp, _) = login.verify(&f.state, &f.last_code()).await;
    assert_eq!(resp, SMS_VERIFIED);
    assert_eq!(
        f.store.mobile("root").await.unwrap().as_deref(),
        Some(TYPED_E164)
    );
    // The next login texts the stored number without asking.
    let (_, resp) = f.begin().await;
    challenge(resp);
    assert_eq!(
        (f.sent(), f.outbox()[1]["to"].as_str()),
        (2, Some(TYPED_E164))
    );
}

#[tokio::test]
async fn an_enrolment_that_never_gets_the_code_right_stores_nothing() {
    let f = Flow::with_users("", ENROLL);
    let (login, _) = f.begin().await;
    let mut login = login.unwrap();
    challenge(login.enroll(&f.state, TYPED).await.0);
    let code = wrong(&f.last_code());
    let mut answers = Vec::new();
    for _ in 0..3 {
        answers.push(login.verify(&f.state, &code).await.0);
    }
    assert_eq!(
        answers,
        [
            Response::Wrong { attempts_left: 2 },
            Response::Wrong { attempts_left: 1 },
            Response::TriesExhausted
        ]
    );
    assert_eq!(f.store.mobile("root").await.unwrap(), None);
    // Still no number: the next login asks again, and sent nothing more.
    let (_, resp) = f.begin().await;
    assert_eq!((resp, f.sent()), (Response::AskMobile, 1));
}

#[tokio::test]
async fn send_to_entered_number_texts_the_typed_number_but_never_stores_it() {
    let f = Flow::with_users(
        "",
        "[policy]\nno_mobile = \"enroll\"\nsend_to_entered_number = true\n",
    );
    let (login, _) = f.begin().await;
    let mut login = login.unwrap();
    challenge(login.enroll(&f.state, TYPED).await.0);
    let (resp, _) = login.verify(&f.state, &f.last_code()).await;
    assert!(matches!(resp, Response::Verified { .. }), "{resp:?}");
    assert_eq!(f.store.mobile("root").await.unwrap(), None);
    let (_, resp) = f.begin().await;
    assert_eq!(resp, Response::AskMobile);
}
