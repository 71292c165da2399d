//! The send budgets: per user, per remote host and for the whole service
//! per hour, and for resends a count per hour and a cooldown. The store
//! reads the hour of sends in one locked transaction and records the send
//! only if [`check`] allows it, so each backend applies the same rules and
//! renders the same refusals.

use smsotp_config::{Resend, SendBudget};

/// The window every send budget counts over.
pub const HOUR: i64 = 3600;

/// The sends in one budget's window: how many, and the oldest (whose
/// leaving the window frees the next send).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Window {
    pub count: i64,
    pub oldest: Option<i64>,
}

/// Everything the budgets need from the last hour of sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct History {
    pub user: Window,
    /// `None` when the login has no remote host.
    pub rhost: Option<Window>,
    pub global: Window,
    pub user_resends: Window,
    /// The user's latest send, for the cooldown.
    pub user_last: Option<i64>,
}

/// Which budget refused a send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    User,
    Rhost,
    Global,
    Resends,
    Cooldown,
}

impl Refusal {
    /// The sentence the user is shown.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::User => "this account has had too many codes sent in the last hour",
            Refusal::Rhost => {
                "too many codes were sent for logins from this address in the last hour"
            }
            Refusal::Global => "the service has reached its hourly SMS limit",
            Refusal::Resends => "too many codes were resent for this account in the last hour",
            Refusal::Cooldown => "a code was sent moments ago",
        }
    }
}

/// A refused send and, when known, the seconds until it would be allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub refusal: Refusal,
    pub retry_after: Option<u64>,
}

/// Whether one more send fits. `resend`: the user asked for another code.
pub fn check(
    h: &History,
    resend: bool,
    budget: &SendBudget,
    r: &Resend,
    now: i64,
) -> Result<(), Refused> {
    let full = |w: &Window, max: u32, refusal| {
        (w.count >= i64::from(max)).then(|| Refused {
            refusal,
            retry_after: w.oldest.map(|o| (o + HOUR - now).max(1) as u64),
        })
    };
    let mut checks = vec![full(&h.user, budget.per_user_per_hour, Refusal::User)];
    if let Some(w) = &h.rhost {
        checks.push(full(w, budget.per_rhost_per_hour, Refusal::Rhost));
    }
    checks.push(full(&h.global, budget.global_per_hour, Refusal::Global));
    if resend {
        checks.push(full(&h.user_resends, r.per_user_per_hour, Refusal::Resends));
        let cooldown = r.cooldown.as_secs() as i64;
        checks.push(
            h.user_last
                .filter(|last| now < last + cooldown)
                .map(|last| Refused {
                    refusal: Refusal::Cooldown,
                    retry_after: Some((last + cooldown - now).max(1) as u64),
                }),
        );
    }
    match checks.into_iter().flatten().next() {
        Some(refused) => Err(refused),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn budget() -> SendBudget {
        SendBudget {
            per_user_per_hour: 3,
            per_rhost_per_hour: 4,
            global_per_hour: 5,
            global_scope: Default::default(),
            allowed_countries: vec![],
        }
    }

    fn resend() -> Resend {
        Resend {
            enabled: true,
            per_user_per_hour: 1,
            cooldown: Duration::from_secs(30),
        }
    }

    fn w(count: i64, oldest: i64) -> Window {
        Window {
            count,
            oldest: Some(oldest),
        }
    }

    #[test]
    fn each_budget_refuses_at_its_size_until_its_oldest_send_leaves() {
        let at = |h: History, resend_: bool| check(&h, resend_, &budget(), &resend(), 2000);
        assert_eq!(at(History::default(), false), Ok(()));
        let user = History {
            user: w(3, 1000),
            ..History::default()
        };
        assert_eq!(
            at(user, false),
            Err(Refused {
                refusal: Refusal::User,
                retry_after: Some(2600)
            })
        );
        let rhost = History {
            rhost: Some(w(4, 1999)),
            ..History::default()
        };
        assert_eq!(at(rhost, false).unwrap_err().refusal, Refusal::Rhost);
        // No remote host: the rhost budget does not apply.
        assert_eq!(
            at(
                History {
                    rhost: None,
                    ..rhost
                },
                false
            ),
            Ok(())
        );
        let global = History {
            global: w(5, 1500),
            ..History::default()
        };
        assert_eq!(at(global, false).unwrap_err().retry_after, Some(3100));
        // The user budget is named first when several are spent.
        let both = History {
            user: w(3, 1000),
            global: w(5, 1000),
            ..History::default()
        };
        assert_eq!(at(both, false).unwrap_err().refusal, Refusal::User);
    }

    #[test]
    fn resends_have_a_count_and_a_cooldown_that_first_sends_ignore() {
        let at = |h: History, resend_: bool| check(&h, resend_, &budget(), &resend(), 2000);
        let recent = History {
            user: w(1, 1990),
            user_last: Some(1990),
            ..History::default()
        };
        assert_eq!(at(recent, false), Ok(()));
        assert_eq!(
            at(recent, true),
            Err(Refused {
                refusal: Refusal::Cooldown,
                retry_after: Some(20)
            })
        );
        let later = History {
            user_last: Some(1970),
            ..recent
        };
        assert_eq!(at(later, true), Ok(()));
        let resent = History {
            user_resends: w(1, 1500),
            ..later
        };
        assert_eq!(at(resent, true).unwrap_err().refusal, Refusal::Resends);
        assert_eq!(Refusal::Cooldown.reason(), "a code was sent moments ago");
    }
}
