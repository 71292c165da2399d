//! Who must do SMS OTP and how hard it is to abuse: the `[policy]` defaults,
//! `[service.NAME]` overrides, `[lockout]`, `[resend]`, `[send_budget]`,
//! `[backup_codes]`; `[store]` in store.rs. Names follow the WSO2 authenticator's
//! settings where it has one (noted per field).

use crate::error::Invalid;
use crate::validate::in_range;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

mod family;
mod store;
pub use family::service_family;
pub(crate) use store::store;
pub use store::{PgSslMode, PostgresConfig, RawStore, StoreBackend, StoreConfig, StoreSync};

pub const DEFAULT_STORE: &str = "/var/lib/smsotp/state.db";

// ---------------------------------------------------------------- raw

/// `[policy]` and each `[service.NAME]`: every key optional, so a service
/// section overrides only what it names.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServicePolicy {
    pub enabled: Option<bool>,
    pub mandatory: Option<bool>,
    pub no_mobile: Option<String>,
    pub send_to_entered_number: Option<bool>,
    pub exempt_users: Option<Vec<String>>,
    pub exempt_groups: Option<Vec<String>>,
    pub trusted_networks: Option<Vec<String>>,
    pub grace_seconds: Option<i64>,
    pub backup_codes: Option<bool>,
    pub show_failure_reason: Option<bool>,
    pub hide_unknown_users: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLockout {
    pub max_failures: Option<i64>,
    pub window_seconds: Option<i64>,
    pub duration_seconds: Option<i64>,
    pub ratio: Option<i64>,
    pub max_duration_seconds: Option<i64>,
    pub decay_seconds: Option<i64>,
    pub backup_max_failures: Option<i64>,
    pub backup_window_seconds: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawResend {
    pub enabled: Option<bool>,
    pub per_user_per_hour: Option<i64>,
    pub cooldown_seconds: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSendBudget {
    pub per_user_per_hour: Option<i64>,
    pub per_rhost_per_hour: Option<i64>,
    pub global_per_hour: Option<i64>,
    pub global_scope: Option<String>,
    pub allowed_countries: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBackupCodes {
    pub enabled: Option<bool>,
    pub count: Option<i64>,
}

// ---------------------------------------------------------------- validated

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoMobile {
    /// Refuse the login (the default).
    Deny,
    /// PAM_IGNORE: like pam_google_authenticator's `nullok`.
    Skip,
    /// Ask for the number, text a code to it, store it once the code is
    /// right (the seed's CaptureAndUpdateMobileNumber).
    Enroll,
}

/// An entry of `exempt_users` / `exempt_groups`: `name` or `!name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameRule {
    pub name: String,
    pub negated: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        // An IPv4 peer seen through an IPv6 socket (::ffff:a.b.c.d) is
        // still that IPv4 address.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// The effective policy of one PAM service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePolicy {
    /// The seed's per-application enablement.
    pub enabled: bool,
    /// SMSOTPMandatory: when false, users may opt out.
    pub mandatory: bool,
    pub no_mobile: NoMobile,
    /// SendOTPDirectlyToMobile: with `no_mobile = "enroll"`, send to the
    /// typed number without storing it. Weak: whoever knows the password
    /// picks the phone. Off unless the admin insists.
    pub send_to_entered_number: bool,
    pub exempt_users: Vec<NameRule>,
    pub exempt_groups: Vec<NameRule>,
    pub trusted_networks: Vec<Cidr>,
    /// Skip the code after a success for the same (user, rhost), or for
    /// sudo the same (user, tty), within this long. Zero = off.
    pub grace: Duration,
    /// BackupCode: backup codes accepted at this service's prompt.
    pub backup_codes: bool,
    /// showAuthFailureReason.
    pub show_failure_reason: bool,
    /// Users without a number get a fake challenge, so the prompt does not
    /// reveal who exists or is enrolled.
    pub hide_unknown_users: bool,
}

impl Default for ServicePolicy {
    fn default() -> Self {
        ServicePolicy {
            enabled: true,
            mandatory: true,
            no_mobile: NoMobile::Deny,
            send_to_entered_number: false,
            exempt_users: Vec::new(),
            exempt_groups: Vec::new(),
            trusted_networks: Vec::new(),
            grace: Duration::ZERO,
            backup_codes: true,
            show_failure_reason: true,
            hide_unknown_users: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub default: ServicePolicy,
    pub services: BTreeMap<String, ServicePolicy>,
}

impl Policy {
    /// The `[service.NAME]` section `service` gets (exact name, then its
    /// family, see [`service_family`]), or `None` for `[policy]`.
    pub fn section_for(&self, service: &str) -> Option<&str> {
        family::section_for(&self.services, service)
    }

    pub fn for_service(&self, service: &str) -> &ServicePolicy {
        self.section_for(service)
            .and_then(|name| self.services.get(name))
            .unwrap_or(&self.default)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lockout {
    /// Wrong codes per user within `window`, across all sessions and hosts.
    pub max_failures: u32,
    pub window: Duration,
    /// First lockout; each further one lasts `ratio` times the previous
    /// (the seed's account lock ratio), up to `max_duration`.
    pub duration: Duration,
    pub ratio: u32,
    pub max_duration: Duration,
    /// A lockout that comes this long after the end of the previous one
    /// counts as the first again: escalation must not ratchet to the cap
    /// forever because of one bad week.
    pub decay: Duration,
    /// Wrong backup codes per user within `backup_window`, a budget of
    /// their own: guesses at SMS codes cannot spend it (so a lockout of
    /// SMS codes leaves backup codes usable) and backup guesses cannot
    /// spend the SMS one. Backup codes carry 64 bits, so a strict budget
    /// costs their owner nothing. Spent, backup codes are locked until the
    /// window ends.
    pub backup_max_failures: u32,
    pub backup_window: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resend {
    /// ResendEnable.
    pub enabled: bool,
    pub per_user_per_hour: u32,
    pub cooldown: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendBudget {
    pub per_user_per_hour: u32,
    pub per_rhost_per_hour: u32,
    pub global_per_hour: u32,
    /// Whose sends `global_per_hour` counts once several hosts share a
    /// store.
    pub global_scope: GlobalScope,
    /// E.164 prefixes such as `+1` or `+44`; empty allows every country.
    pub allowed_countries: Vec<String>,
}

/// Whose sends `[send_budget] global_per_hour` counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GlobalScope {
    /// This host's sends only (the default): moving a host to a shared
    /// store does not divide its hourly limit among the fleet, and a
    /// flood through one host cannot stop codes on the others.
    #[default]
    Host,
    /// Every host's sends in the shared store: one cap on the fleet's SMS
    /// bill.
    Fleet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupCodes {
    pub enabled: bool,
    pub count: u32,
}

// ---------------------------------------------------------------- checks

fn name_rules(key: &str, raw: Option<Vec<String>>) -> Result<Vec<NameRule>, Invalid> {
    raw.unwrap_or_default()
        .into_iter()
        .map(|entry| {
            let (negated, name) = match entry.strip_prefix('!') {
                Some(rest) => (true, rest),
                None => (false, entry.as_str()),
            };
            if name.is_empty()
                || name.len() > 256
                || name.chars().any(|c| c.is_control() || c.is_whitespace())
            {
                return Err(Invalid::new(
                    key,
                    format!("{entry:?} is not a name (or !name)"),
                ));
            }
            Ok(NameRule {
                name: name.to_string(),
                negated,
            })
        })
        .collect()
}

fn cidrs(key: &str, raw: Option<Vec<String>>) -> Result<Vec<Cidr>, Invalid> {
    raw.unwrap_or_default()
        .into_iter()
        .map(|entry| {
            let bad = || {
                Invalid::new(
                    key,
                    format!("{entry:?} is not an address or CIDR (e.g. 10.0.0.0/8, 2001:db8::/32)"),
                )
            };
            let (addr, prefix) = match entry.split_once('/') {
                Some((a, p)) => (a, Some(p)),
                None => (entry.as_str(), None),
            };
            let addr: IpAddr = addr.parse().map_err(|_| bad())?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let prefix = match prefix {
                Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
                None => max,
            };
            Ok(Cidr { addr, prefix })
        })
        .collect()
}

/// Applies `raw` over `base`.
pub(crate) fn service(
    key: &str,
    raw: RawServicePolicy,
    base: &ServicePolicy,
) -> Result<ServicePolicy, Invalid> {
    let k = |f: &str| format!("{key}.{f}");
    let no_mobile = match raw.no_mobile.as_deref() {
        None => base.no_mobile,
        Some("deny") => NoMobile::Deny,
        Some("skip") => NoMobile::Skip,
        Some("enroll") => NoMobile::Enroll,
        Some(other) => {
            return Err(Invalid::new(
                k("no_mobile"),
                format!("must be deny, skip or enroll, not {other:?}"),
            ));
        }
    };
    let send_to_entered_number = raw
        .send_to_entered_number
        .unwrap_or(base.send_to_entered_number);
    if send_to_entered_number && no_mobile != NoMobile::Enroll {
        return Err(Invalid::new(
            k("send_to_entered_number"),
            "only makes sense with no_mobile = \"enroll\"",
        ));
    }
    Ok(ServicePolicy {
        enabled: raw.enabled.unwrap_or(base.enabled),
        mandatory: raw.mandatory.unwrap_or(base.mandatory),
        no_mobile,
        send_to_entered_number,
        exempt_users: match raw.exempt_users {
            Some(v) => name_rules(&k("exempt_users"), Some(v))?,
            None => base.exempt_users.clone(),
        },
        exempt_groups: match raw.exempt_groups {
            Some(v) => name_rules(&k("exempt_groups"), Some(v))?,
            None => base.exempt_groups.clone(),
        },
        trusted_networks: match raw.trusted_networks {
            Some(v) => cidrs(&k("trusted_networks"), Some(v))?,
            None => base.trusted_networks.clone(),
        },
        grace: Duration::from_secs(in_range(
            &k("grace_seconds"),
            raw.grace_seconds,
            base.grace.as_secs() as i64,
            0,
            86_400,
        )? as u64),
        backup_codes: raw.backup_codes.unwrap_or(base.backup_codes),
        show_failure_reason: raw.show_failure_reason.unwrap_or(base.show_failure_reason),
        hide_unknown_users: raw.hide_unknown_users.unwrap_or(base.hide_unknown_users),
    })
}

pub(crate) fn policy(
    default: RawServicePolicy,
    services: BTreeMap<String, RawServicePolicy>,
) -> Result<Policy, Invalid> {
    let default = service("policy", default, &ServicePolicy::default())?;
    let mut out = BTreeMap::new();
    for (name, raw) in services {
        if name.is_empty() || name.len() > 64 || name.chars().any(|c| c.is_control() || c == '/') {
            return Err(Invalid::new(
                format!("service.{name}"),
                "is not a PAM service name",
            ));
        }
        let p = service(&format!("service.{name}"), raw, &default)?;
        out.insert(name, p);
    }
    Ok(Policy {
        default,
        services: out,
    })
}

pub(crate) fn lockout(raw: RawLockout) -> Result<Lockout, Invalid> {
    let l = Lockout {
        max_failures: in_range("lockout.max_failures", raw.max_failures, 5, 1, 100)? as u32,
        window: Duration::from_secs(in_range(
            "lockout.window_seconds",
            raw.window_seconds,
            900,
            60,
            86_400,
        )? as u64),
        duration: Duration::from_secs(in_range(
            "lockout.duration_seconds",
            raw.duration_seconds,
            300,
            10,
            86_400,
        )? as u64),
        ratio: in_range("lockout.ratio", raw.ratio, 2, 1, 10)? as u32,
        max_duration: Duration::from_secs(in_range(
            "lockout.max_duration_seconds",
            raw.max_duration_seconds,
            86_400,
            10,
            30 * 86_400,
        )? as u64),
        decay: Duration::from_secs(in_range(
            "lockout.decay_seconds",
            raw.decay_seconds,
            86_400,
            10,
            365 * 86_400,
        )? as u64),
        backup_max_failures: in_range(
            "lockout.backup_max_failures",
            raw.backup_max_failures,
            10,
            1,
            100,
        )? as u32,
        backup_window: Duration::from_secs(in_range(
            "lockout.backup_window_seconds",
            raw.backup_window_seconds,
            86_400,
            60,
            30 * 86_400,
        )? as u64),
    };
    if l.max_duration < l.duration {
        return Err(Invalid::new(
            "lockout.max_duration_seconds",
            "must not be shorter than duration_seconds",
        ));
    }
    Ok(l)
}

pub(crate) fn resend(raw: RawResend) -> Result<Resend, Invalid> {
    Ok(Resend {
        enabled: raw.enabled.unwrap_or(true),
        per_user_per_hour: in_range(
            "resend.per_user_per_hour",
            raw.per_user_per_hour,
            10,
            0,
            1000,
        )? as u32,
        cooldown: Duration::from_secs(in_range(
            "resend.cooldown_seconds",
            raw.cooldown_seconds,
            30,
            0,
            3600,
        )? as u64),
    })
}

pub(crate) fn send_budget(raw: RawSendBudget) -> Result<SendBudget, Invalid> {
    let allowed_countries = raw
        .allowed_countries
        .unwrap_or_default()
        .into_iter()
        .map(|p| {
            let digits = p.strip_prefix('+').unwrap_or("");
            if digits.is_empty()
                || digits.len() > 6
                || !digits.bytes().all(|b| b.is_ascii_digit())
                || digits.starts_with('0')
            {
                Err(Invalid::new(
                    "send_budget.allowed_countries",
                    format!("{p:?} is not an E.164 prefix such as \"+1\" or \"+44\""),
                ))
            } else {
                Ok(p)
            }
        })
        .collect::<Result<_, _>>()?;
    Ok(SendBudget {
        per_user_per_hour: in_range(
            "send_budget.per_user_per_hour",
            raw.per_user_per_hour,
            10,
            1,
            10_000,
        )? as u32,
        per_rhost_per_hour: in_range(
            "send_budget.per_rhost_per_hour",
            raw.per_rhost_per_hour,
            30,
            1,
            100_000,
        )? as u32,
        global_per_hour: in_range(
            "send_budget.global_per_hour",
            raw.global_per_hour,
            1000,
            1,
            1_000_000,
        )? as u32,
        global_scope: match raw.global_scope.as_deref() {
            None | Some("host") => GlobalScope::Host,
            Some("fleet") => GlobalScope::Fleet,
            Some(other) => {
                return Err(Invalid::new(
                    "send_budget.global_scope",
                    format!("must be \"host\" or \"fleet\", not {other:?}"),
                ))
            }
        },
        allowed_countries,
    })
}

pub(crate) fn backup_codes(raw: RawBackupCodes) -> Result<BackupCodes, Invalid> {
    Ok(BackupCodes {
        enabled: raw.enabled.unwrap_or(true),
        count: in_range("backup_codes.count", raw.count, 10, 1, 32)? as u32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(s: &str) -> Cidr {
        cidrs("k", Some(vec![s.to_string()])).unwrap()[0]
    }

    #[test]
    fn cidr_matching() {
        let net = cidr("10.1.0.0/16");
        assert!(net.contains("10.1.2.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.9.9".parse().unwrap()));
        assert!(cidr("0.0.0.0/0").contains("192.0.2.1".parse().unwrap()));
        assert!(cidr("192.0.2.7").contains("192.0.2.7".parse().unwrap()));
        assert!(!cidr("192.0.2.7").contains("192.0.2.8".parse().unwrap()));
        assert!(cidr("2001:db8::/32").contains("2001:db8:1::1".parse().unwrap()));
        assert!(!cidr("2001:db8::/32").contains("10.0.0.1".parse().unwrap()));
        assert!(cidrs("k", Some(vec!["10.0.0.0/33".into()])).is_err());
        assert!(cidrs("k", Some(vec!["host.example".into()])).is_err());
    }

    #[test]
    fn name_rules_parse_negation() {
        let r = name_rules("k", Some(vec!["alice".into(), "!bob".into()])).unwrap();
        assert_eq!(
            r[1],
            NameRule {
                name: "bob".into(),
                negated: true
            }
        );
        assert!(name_rules("k", Some(vec!["!".into()])).is_err());
        assert!(name_rules("k", Some(vec!["a b".into()])).is_err());
    }
}
