//! The search filter for one user: the configured template with every
//! `{{user}}` replaced by the name escaped per RFC 4515 (`*`, `(`, `)`,
//! `\` and NUL as `\2a`, `\28`, `\29`, `\5c`, `\00`), so a name such as
//! `*)(uid=*` is a literal that matches nobody instead of a wider search.

/// The filter `template` (validated by the config: it holds `{{user}}`)
/// for `user`.
pub fn for_user(template: &str, user: &str) -> String {
    template.replace("{{user}}", &ldap3::ldap_escape(user))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metacharacters_become_literals() {
        let t = "(uid={{user}})";
        assert_eq!(for_user(t, "alice"), "(uid=alice)");
        assert_eq!(for_user(t, "*)(uid=*"), "(uid=\\2a\\29\\28uid=\\2a)");
        assert_eq!(for_user(t, "a\\b\0c"), "(uid=a\\5cb\\00c)");
        assert_eq!(for_user(t, "*"), "(uid=\\2a)");
        // Non-ASCII is allowed verbatim in the string form (UTF-8).
        assert_eq!(for_user(t, "jürgen"), "(uid=jürgen)");
        assert_eq!(
            for_user("(|(uid={{user}})(mail={{user}}@x))", "a*"),
            "(|(uid=a\\2a)(mail=a\\2a@x))"
        );
    }

    #[test]
    fn an_escaped_name_never_adds_a_filter_component() {
        for hostile in ["*)(uid=*", "x)(|(uid=*", "*))%00", "(", ")", "\\", "a\0*"] {
            let f = for_user("(uid={{user}})", hostile);
            let inner = &f[1..f.len() - 1];
            assert!(!inner.contains(['(', ')', '*', '\0']), "{hostile:?} -> {f}");
        }
    }
}
