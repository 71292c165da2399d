//! The unknown user's challenge under `hide_unknown_users`: the same
//! prompt, about the same delay and the same budgets as a real send, and
//! no code at all, so nothing typed can ever complete it.

use super::{Kind, Login};
use crate::otp::Challenge;
use crate::policy;
use crate::state::{Runtime, State};
use crate::store::{ChallengeOutcome, SendDecision};
use smsotp_config::{Mobile, SendBudget};
use smsotp_proto::Response;
use std::sync::Arc;
use std::time::Instant;
use tracing::info;

/// Mobile numbering plans a fake number is drawn from: country code, the
/// start of a mobile number there, and the national length. Several
/// lengths, so the mask's length does not tell a fake from a real user.
const PLANS: &[(&str, &str, usize)] = &[
    ("1", "555", 10),
    ("44", "7", 10),
    ("49", "15", 11),
    ("49", "17", 10),
    ("33", "6", 9),
    ("91", "9", 10),
    ("61", "4", 9),
    ("34", "6", 9),
    ("39", "3", 10),
    ("31", "6", 9),
];

impl Login {
    /// `out`: the Begin's transaction, which reserved the send.
    pub(super) async fn fake_challenge(
        &mut self,
        state: &Arc<State>,
        rt: &Runtime,
        out: &ChallengeOutcome,
    ) -> Response {
        let b = &self.begin;
        audit!(
            info,
            "no_mobile",
            b,
            hidden = true,
            "user has no mobile number; fake challenge"
        );
        // The send budgets apply as if an SMS went out, or their refusals
        // would tell real users from unknown ones.
        match &out.send {
            Some(SendDecision::Allowed) => {}
            Some(SendDecision::Refused {
                reason,
                retry_after,
            }) => {
                return Response::SendRefused {
                    reason: reason.clone(),
                    retry_after_secs: *retry_after,
                }
            }
            // Nothing was reserved: deny as a failed send would.
            None => return Response::SendFailed,
        }
        // The same user always sees the same fake number.
        let seed = state.hasher.hash(&format!("fake-mobile:{}", b.user));
        let mobile = fake_mobile(&seed, &rt.config.send_budget);
        tokio::time::sleep(state.typical_send_time()).await;
        let challenge = Challenge::without_code(rt.config.otp, Instant::now());
        self.open(rt, Kind::Fake, mobile, challenge, false, None)
    }
}

/// A plausible number from `seed`: a plan the host may send to, digits
/// from the seed.
fn fake_mobile(seed: &[u8; 32], budget: &SendBudget) -> Option<Mobile> {
    let build = |(cc, start, len): (&str, &str, usize)| {
        let mut digits = format!("+{cc}{start}");
        for (i, byte) in seed
            .iter()
            .cycle()
            .skip(4)
            .take(len - start.len())
            .enumerate()
        {
            digits.push(char::from(b'0' + (byte.wrapping_add(i as u8) % 10)));
        }
        Mobile::parse(&digits).ok()
    };
    let sendable: Vec<Mobile> = PLANS
        .iter()
        .filter_map(|p| build(*p))
        .filter(|m| policy::country_allowed(budget, m))
        .collect();
    let pick = u32::from_be_bytes([seed[0], seed[1], seed[2], seed[3]]) as usize;
    if !sendable.is_empty() {
        return sendable.get(pick % sendable.len()).cloned();
    }
    // Only countries none of the plans cover: ten digits after the first.
    let cc = budget.allowed_countries.first()?.trim_start_matches('+');
    build((cc, "", 10)).or_else(|| build(PLANS[0]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(countries: &[&str]) -> SendBudget {
        SendBudget {
            per_user_per_hour: 10,
            per_rhost_per_hour: 10,
            global_per_hour: 10,
            global_scope: Default::default(),
            allowed_countries: countries.iter().map(|c| c.to_string()).collect(),
        }
    }

    fn seed(n: u8) -> [u8; 32] {
        let mut s = [0u8; 32];
        for (i, b) in s.iter_mut().enumerate() {
            *b = n.wrapping_mul(37).wrapping_add((i as u8).wrapping_mul(11));
        }
        s
    }

    #[test]
    fn fake_numbers_are_stable_and_of_several_lengths() {
        let open = budget(&[]);
        assert_eq!(fake_mobile(&seed(1), &open), fake_mobile(&seed(1), &open));
        let lengths: std::collections::BTreeSet<usize> = (0..=255u8)
            .filter_map(|n| fake_mobile(&seed(n), &open))
            .map(|m| m.digits().len())
            .collect();
        assert!(lengths.len() >= 3, "{lengths:?}");
    }

    #[test]
    fn fake_numbers_respect_allowed_countries() {
        let uk = budget(&["+44"]);
        for n in 0..32u8 {
            let m = fake_mobile(&seed(n), &uk).expect("a number");
            assert!(m.e164().starts_with("+447"), "{}", m.e164());
        }
        let elsewhere = budget(&["+358"]);
        let m = fake_mobile(&seed(3), &elsewhere).expect("a number");
        assert!(m.e164().starts_with("+358"), "{}", m.e164());
    }
}
