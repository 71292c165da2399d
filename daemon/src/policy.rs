//! Who needs a code: exemptions by user, group and network, and the
//! destination-country allowlist. The durable parts (grace, opt-out,
//! lockout) are asked of the store by the login flow.

use smsotp_config::{service_family, Mobile, NameRule, SendBudget, ServicePolicy};
use smsotp_proto::SkipReason;
use std::net::IpAddr;

/// `!name` wins over `name`: an admin can exempt a group but never one
/// person in it.
fn rule_verdict(rules: &[NameRule], names: &[String]) -> Option<bool> {
    if rules.iter().any(|r| r.negated && names.contains(&r.name)) {
        return Some(false);
    }
    if rules.iter().any(|r| !r.negated && names.contains(&r.name)) {
        return Some(true);
    }
    None
}

/// Exemption by user name or group. Resolving groups goes through NSS
/// (LDAP, sssd), so callers run this on the blocking pool.
pub fn exemption(policy: &ServicePolicy, user: &str) -> Option<SkipReason> {
    let me = [user.to_string()];
    match rule_verdict(&policy.exempt_users, &me) {
        Some(true) => return Some(SkipReason::ExemptUser),
        Some(false) => return None,
        None => {}
    }
    if policy.exempt_groups.is_empty() {
        return None;
    }
    let groups = groups_of(user);
    match rule_verdict(&policy.exempt_groups, &groups) {
        Some(true) => Some(SkipReason::ExemptGroup),
        _ => None,
    }
}

fn groups_of(user: &str) -> Vec<String> {
    use nix::unistd::{getgrouplist, Group, User};
    let Ok(Some(pw)) = User::from_name(user) else {
        return Vec::new();
    };
    let Ok(cname) = std::ffi::CString::new(user) else {
        return Vec::new();
    };
    getgrouplist(&cname, pw.gid)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|gid| Group::from_gid(gid).ok().flatten().map(|g| g.name))
        .collect()
}

/// PAM_RHOST is a name or an address; only an address can be trusted.
pub fn trusted_network(policy: &ServicePolicy, rhost: Option<&str>) -> bool {
    let Some(ip) = rhost.and_then(|r| r.parse::<IpAddr>().ok()) else {
        return false;
    };
    policy.trusted_networks.iter().any(|net| net.contains(ip))
}

pub fn country_allowed(budget: &SendBudget, mobile: &Mobile) -> bool {
    budget.allowed_countries.is_empty()
        || budget
            .allowed_countries
            .iter()
            .any(|prefix| mobile.e164().starts_with(prefix.as_str()))
}

/// What a grace period is keyed on: the remote host for network logins,
/// the terminal for the sudo family (same shell session; `sudo -i` is
/// `sudo-i`), nothing otherwise. The family is the one the policy lookup
/// uses, so a service gets sudo's keying exactly when it can get
/// `[service.sudo]`.
pub fn grace_context(
    host: &str,
    service: &str,
    rhost: Option<&str>,
    tty: Option<&str>,
) -> Option<String> {
    let rhost = rhost.filter(|r| !r.is_empty());
    let tty = tty.filter(|t| !t.is_empty());
    // The host is part of it: hosts sharing one store (a fleet) each have
    // a /dev/pts/1, and a success on one must not skip the code on another.
    if service_family(service) == "sudo" {
        tty.map(|t| format!("{host} {service} tty:{t}"))
    } else {
        rhost.map(|r| format!("{host} {service} rhost:{r}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(v: &[&str]) -> Vec<NameRule> {
        v.iter()
            .map(|s| match s.strip_prefix('!') {
                Some(n) => NameRule {
                    name: n.into(),
                    negated: true,
                },
                None => NameRule {
                    name: s.to_string(),
                    negated: false,
                },
            })
            .collect()
    }

    #[test]
    fn user_rules_and_negation() {
        let p = ServicePolicy {
            exempt_users: rules(&["alice", "!bob"]),
            exempt_groups: rules(&["root"]),
            ..ServicePolicy::default()
        };
        assert_eq!(exemption(&p, "alice"), Some(SkipReason::ExemptUser));
        // root is in group root, but a user-level negation wins.
        let p2 = ServicePolicy {
            exempt_users: rules(&["!root"]),
            exempt_groups: rules(&["root"]),
            ..ServicePolicy::default()
        };
        assert_eq!(exemption(&p2, "root"), None);
        assert_eq!(exemption(&p, "root"), Some(SkipReason::ExemptGroup));
        assert_eq!(exemption(&p, "nosuchuser-xyz"), None);
        let p3 = ServicePolicy {
            exempt_groups: rules(&["root", "!root"]),
            ..ServicePolicy::default()
        };
        assert_eq!(exemption(&p3, "root"), None, "group negation wins");
    }

    #[test]
    fn grace_contexts() {
        assert_eq!(
            grace_context("h1", "sshd", Some("192.0.2.1"), Some("ssh")).as_deref(),
            Some("h1 sshd rhost:192.0.2.1")
        );
        assert_eq!(
            grace_context("h1", "sudo", Some("x"), Some("/dev/pts/1")).as_deref(),
            Some("h1 sudo tty:/dev/pts/1")
        );
        assert_eq!(
            grace_context("h1", "sudo-i", Some("x"), Some("/dev/pts/1")).as_deref(),
            Some("h1 sudo-i tty:/dev/pts/1"),
            "sudo -i is sudo's family"
        );
        assert_eq!(
            grace_context("h1", "sudoers-audit", Some("192.0.2.1"), Some("/dev/pts/1")).as_deref(),
            Some("h1 sudoers-audit rhost:192.0.2.1"),
            "a name that only starts with sudo is not sudo"
        );
        assert_eq!(grace_context("h1", "sshd", None, None), None);
        assert_eq!(grace_context("h1", "sudo", None, Some("")), None);
    }

    #[test]
    fn countries() {
        let m = Mobile::parse("+447700900123").unwrap();
        let mut b = SendBudget {
            per_user_per_hour: 1,
            per_rhost_per_hour: 1,
            global_per_hour: 1,
            global_scope: Default::default(),
            allowed_countries: vec![],
        };
        assert!(country_allowed(&b, &m));
        b.allowed_countries = vec!["+1".into()];
        assert!(!country_allowed(&b, &m));
        b.allowed_countries.push("+44".into());
        assert!(country_allowed(&b, &m));
    }
}
