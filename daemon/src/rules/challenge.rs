//! What a request that may text a code (`Begin`, `Resend`, `Enroll`) does,
//! from the facts its one store transaction read: skip (grace, opt-out),
//! refuse because SMS codes are locked (and whether this request tells the
//! owner), stop for want of a number, refuse the country, or reserve a send
//! (which [`super::send`] then checks against the budgets). The store
//! applies the step in the same transaction; nothing here reads a clock or
//! a database.

use smsotp_config::{Mobile, SendBudget};

/// What the request asks the decision to weigh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ask {
    /// Grace length in seconds, when a recent success may skip the code.
    pub grace: Option<u64>,
    /// Whether the user's opt-out skips the code (not on mandatory services).
    pub opt_out_counts: bool,
    /// Reserve a send even without a number: the fake challenge of an
    /// unknown user pays the budgets as a real one would.
    pub send_without_number: bool,
    /// Whether the number may be told of a lockout (a verified one: not a
    /// number typed at enrolment).
    pub notice: bool,
}

/// The facts read inside the transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Facts {
    /// The last success in the grace context, if asked.
    pub last_success: Option<i64>,
    pub opted_out: bool,
    /// The stored end of the latest lock of SMS codes (kept after it ends).
    pub locked_until: i64,
    /// The lock whose notice was already claimed.
    pub notified_until: i64,
    pub has_number: bool,
    /// Whether the number may receive codes (`allowed_countries`).
    pub country_allowed: bool,
}

impl Facts {
    /// With the number the login would text, if any, and whether its
    /// country may receive codes.
    pub fn with_number(self, number: Option<&Mobile>, budget: &SendBudget) -> Facts {
        Facts {
            has_number: number.is_some(),
            country_allowed: number.is_some_and(|m| crate::policy::country_allowed(budget, m)),
            ..self
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Grace,
    OptedOut,
    /// SMS codes are locked until `until`. `notify`: this request claims
    /// the once-per-lockout notice to the owner's phone.
    Locked {
        until: i64,
        notify: bool,
    },
    /// No number. `send`: reserve a send anyway (a fake challenge).
    NoNumber {
        send: bool,
    },
    CountryRefused,
    /// Reserve a send against the budgets.
    Send,
}

/// Whether a success `at` is recent enough to skip the code at `now`.
pub fn in_grace(at: i64, grace_secs: u64, now: i64) -> bool {
    (0..grace_secs.min(i64::MAX as u64) as i64).contains(&now.saturating_sub(at))
}

/// The exemptions first, then the lock, the number and its country.
pub fn decide(ask: &Ask, f: &Facts, now: i64) -> Step {
    if let (Some(grace), Some(at)) = (ask.grace, f.last_success) {
        if in_grace(at, grace, now) {
            return Step::Grace;
        }
    }
    if ask.opt_out_counts && f.opted_out {
        return Step::OptedOut;
    }
    if f.locked_until > now {
        return Step::Locked {
            until: f.locked_until,
            // Only a user with a number can be told; the claim is taken
            // once per lock, by whichever request sees it first.
            notify: ask.notice && f.has_number && f.notified_until != f.locked_until,
        };
    }
    if !f.has_number {
        return Step::NoNumber {
            send: ask.send_without_number,
        };
    }
    if !f.country_allowed {
        return Step::CountryRefused;
    }
    Step::Send
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> Facts {
        Facts {
            has_number: true,
            country_allowed: true,
            ..Facts::default()
        }
    }

    #[test]
    fn grace_counts_only_inside_its_length_and_not_from_the_future() {
        let ask = Ask {
            grace: Some(300),
            ..Ask::default()
        };
        let at = |t| Facts {
            last_success: Some(t),
            ..facts()
        };
        assert_eq!(decide(&ask, &at(1000), 1299), Step::Grace);
        assert_eq!(decide(&ask, &at(1000), 1300), Step::Send);
        // A stamp from a clock ahead of ours grants nothing.
        assert_eq!(decide(&ask, &at(2000), 1000), Step::Send);
        // No grace asked: a stamp is ignored.
        assert_eq!(decide(&Ask::default(), &at(1000), 1001), Step::Send);
    }

    #[test]
    fn opt_out_skips_only_where_it_counts_and_before_a_lock() {
        let f = Facts {
            opted_out: true,
            locked_until: 5000,
            ..facts()
        };
        let counts = Ask {
            opt_out_counts: true,
            ..Ask::default()
        };
        assert_eq!(decide(&counts, &f, 100), Step::OptedOut);
        assert!(matches!(
            decide(&Ask::default(), &f, 100),
            Step::Locked { until: 5000, .. }
        ));
    }

    #[test]
    fn a_lock_is_told_once_and_only_to_a_user_with_a_number() {
        let locked = Facts {
            locked_until: 500,
            ..facts()
        };
        let ask = Ask {
            notice: true,
            ..Ask::default()
        };
        assert_eq!(
            decide(&ask, &locked, 100),
            Step::Locked {
                until: 500,
                notify: true
            }
        );
        let told = Facts {
            notified_until: 500,
            ..locked
        };
        assert_eq!(
            decide(&ask, &told, 100),
            Step::Locked {
                until: 500,
                notify: false
            }
        );
        let no_number = Facts {
            has_number: false,
            ..locked
        };
        assert_eq!(
            decide(&ask, &no_number, 100),
            Step::Locked {
                until: 500,
                notify: false
            }
        );
        // An unverified number (enrolment) is never told.
        assert_eq!(
            decide(&Ask::default(), &locked, 100),
            Step::Locked {
                until: 500,
                notify: false
            }
        );
        // Ended: the login goes on.
        assert_eq!(decide(&ask, &locked, 500), Step::Send);
    }

    #[test]
    fn without_a_number_only_a_fake_challenge_sends_and_countries_are_checked() {
        let none = Facts {
            has_number: false,
            ..facts()
        };
        assert_eq!(
            decide(&Ask::default(), &none, 1),
            Step::NoNumber { send: false }
        );
        let fake = Ask {
            send_without_number: true,
            ..Ask::default()
        };
        assert_eq!(decide(&fake, &none, 1), Step::NoNumber { send: true });
        let abroad = Facts {
            country_allowed: false,
            ..facts()
        };
        assert_eq!(decide(&Ask::default(), &abroad, 1), Step::CountryRefused);
    }
}
