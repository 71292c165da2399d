//! `{{name}}` templates, parsed once at load time so a typo in a
//! placeholder is a config error with a line number, and rendering is a
//! walk over pre-split pieces. The legacy WSO2 placeholders `$ctx.num` and
//! `$ctx.msg` are read as `{{mobile}}` and `{{body}}`.
//!
//! Escaping is the caller's: the renderer hands each placeholder to a
//! closure that appends the value as JSON, form-encoded, or plain text.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Var {
    Code,
    ExpiryMinutes,
    Host,
    Service,
    User,
    Rhost,
    Command,
    Mobile,
    Body,
}

impl Var {
    pub const ALL: [Var; 9] = [
        Var::Code,
        Var::ExpiryMinutes,
        Var::Host,
        Var::Service,
        Var::User,
        Var::Rhost,
        Var::Command,
        Var::Mobile,
        Var::Body,
    ];

    /// Placeholders an SMS text may use.
    pub const MESSAGE: [Var; 7] = [
        Var::Code,
        Var::ExpiryMinutes,
        Var::Host,
        Var::Service,
        Var::User,
        Var::Rhost,
        Var::Command,
    ];

    /// Placeholders a provider's URL or payload may use.
    pub const PAYLOAD: [Var; 2] = [Var::Mobile, Var::Body];

    pub fn name(self) -> &'static str {
        match self {
            Var::Code => "code",
            Var::ExpiryMinutes => "expiry_minutes",
            Var::Host => "host",
            Var::Service => "service",
            Var::User => "user",
            Var::Rhost => "rhost",
            Var::Command => "command",
            Var::Mobile => "mobile",
            Var::Body => "body",
        }
    }

    fn from_name(name: &str) -> Option<Var> {
        Var::ALL.into_iter().find(|v| v.name() == name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Var(Var),
}

#[derive(Clone, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self
            .pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Var(v) => Some(v.name()),
                Piece::Text(_) => None,
            })
            .collect();
        // Literal text may hold credentials (a URL with an API key), so
        // only the placeholders are shown.
        write!(f, "Template {{ vars: {names:?} }}")
    }
}

/// Longest template accepted; an SMS body is far shorter.
pub const MAX_TEMPLATE: usize = 4096;

const LEGACY: [(&str, Var); 2] = [("$ctx.num", Var::Mobile), ("$ctx.msg", Var::Body)];

impl Template {
    /// Parses `text`, accepting only the placeholders in `allowed`.
    pub fn parse(text: &str, allowed: &[Var]) -> Result<Template, String> {
        if text.len() > MAX_TEMPLATE {
            return Err(format!("longer than {MAX_TEMPLATE} bytes"));
        }
        let known = || {
            allowed
                .iter()
                .map(|v| format!("{{{{{}}}}}", v.name()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut pieces = Vec::new();
        let mut text_buf = String::new();
        let mut rest = text;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("{{") {
                let end = after
                    .find("}}")
                    .ok_or_else(|| "a '{{' is never closed by '}}'".to_string())?;
                let name = after[..end].trim();
                let var = Var::from_name(name)
                    .filter(|v| allowed.contains(v))
                    .ok_or_else(|| {
                        format!("unknown placeholder {{{{{name}}}}}; use {}", known())
                    })?;
                if !text_buf.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text_buf)));
                }
                pieces.push(Piece::Var(var));
                rest = &after[end + 2..];
                continue;
            }
            if let Some((legacy, var)) = LEGACY.iter().find(|(l, _)| rest.starts_with(l)) {
                if !allowed.contains(var) {
                    return Err(format!("{legacy} is not allowed here; use {}", known()));
                }
                if !text_buf.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text_buf)));
                }
                pieces.push(Piece::Var(*var));
                rest = &rest[legacy.len()..];
                continue;
            }
            let mut chars = rest.chars();
            if let Some(c) = chars.next() {
                text_buf.push(c);
            }
            rest = chars.as_str();
        }
        if !text_buf.is_empty() {
            pieces.push(Piece::Text(text_buf));
        }
        Ok(Template { pieces })
    }

    pub fn uses(&self, var: Var) -> bool {
        self.pieces.contains(&Piece::Var(var))
    }

    /// Literal text is copied; each placeholder is handed to `value`, which
    /// appends it to the output with whatever escaping the context needs.
    pub fn render(&self, mut value: impl FnMut(Var, &mut String)) -> String {
        let mut out = String::with_capacity(128);
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Var(v) => value(*v, &mut out),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(t: &Template) -> String {
        t.render(|v, out| out.push_str(&format!("<{}>", v.name())))
    }

    #[test]
    fn placeholders_with_and_without_spaces() {
        let t = Template::parse("a {{code}} b {{ host }} c{{  user}}", &Var::MESSAGE).unwrap();
        assert_eq!(plain(&t), "a <code> b <host> c<user>");
        assert!(t.uses(Var::Code));
        assert!(!t.uses(Var::Service));
    }

    #[test]
    fn legacy_ctx_placeholders() {
        let t = Template::parse("to=$ctx.num&text=$ctx.msg", &Var::PAYLOAD).unwrap();
        assert_eq!(plain(&t), "to=<mobile>&text=<body>");
        assert!(Template::parse("$ctx.num", &Var::MESSAGE).is_err());
    }

    #[test]
    fn errors_name_the_problem() {
        let e = Template::parse("{{cod}}", &Var::MESSAGE).unwrap_err();
        assert!(e.contains("unknown placeholder {{cod}}"), "{e}");
        assert!(e.contains("{{code}}"), "{e}");
        assert!(Template::parse("x {{code", &Var::MESSAGE)
            .unwrap_err()
            .contains("never closed"));
        assert!(Template::parse("{{mobile}}", &Var::MESSAGE).is_err());
        assert!(Template::parse(&"x".repeat(5000), &Var::MESSAGE).is_err());
    }

    #[test]
    fn unicode_text_is_kept() {
        let t = Template::parse("Код {{code}} ✓ $ctx", &Var::MESSAGE).unwrap();
        assert_eq!(plain(&t), "Код <code> ✓ $ctx");
    }

    #[test]
    fn debug_hides_literal_text() {
        let t = Template::parse("https://x/?key=SECRETKEY&to={{mobile}}", &Var::PAYLOAD).unwrap();
        assert!(!format!("{t:?}").contains("SECRETKEY"));
    }
}
