//! Which `[service.NAME]` section a PAM service gets. One rule, used by
//! every per-service decision (the policy lookup, the daemon's grace keying,
//! `smsotpctl doctor`): the exact name, then its family, then `[policy]`.

use std::collections::BTreeMap;

/// The family of a PAM service: its name up to the first `-`. Programs name
/// their variants that way (Debian's sudo uses `sudo-i` for `sudo -i`, su
/// uses `su-l` for `su -l`), and an admin who protects `sudo` means
/// `sudo -i` too: matching only exact names left those on `[policy]`.
pub fn service_family(service: &str) -> &str {
    match service.split_once('-') {
        Some((family, _)) if !family.is_empty() => family,
        _ => service,
    }
}

/// The `[service.NAME]` section that applies to `service`, by name, or
/// `None` for `[policy]`.
pub fn section_for<'a, T>(sections: &'a BTreeMap<String, T>, service: &str) -> Option<&'a str> {
    [service, service_family(service)]
        .into_iter()
        .find_map(|name| sections.get_key_value(name))
        .map(|(name, _)| name.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn family_is_the_name_up_to_the_first_dash() {
        assert_eq!(service_family("sudo-i"), "sudo");
        assert_eq!(service_family("su-l"), "su");
        assert_eq!(service_family("sshd"), "sshd");
        assert_eq!(service_family("sudo-smsotp-test"), "sudo");
        // A name that starts with '-' has no family; it is its own.
        assert_eq!(service_family("-x"), "-x");
    }

    #[test]
    fn exact_section_then_family_then_default() {
        let s: BTreeMap<String, ()> = [("sudo".to_string(), ()), ("sudo-i".to_string(), ())]
            .into_iter()
            .collect();
        assert_eq!(section_for(&s, "sudo-i"), Some("sudo-i"), "exact wins");
        assert_eq!(section_for(&s, "sudo-ws"), Some("sudo"), "then the family");
        assert_eq!(section_for(&s, "sudo"), Some("sudo"));
        assert_eq!(
            section_for(&s, "sudoedit"),
            None,
            "a family is not a prefix"
        );
        assert_eq!(section_for(&s, "su-l"), None, "then [policy]");
        assert_eq!(section_for(&s, "sshd"), None);
    }
}
