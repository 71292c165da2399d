//! Reading pam.d files the way Linux-PAM does: comments, `\\`
//! continuations, `[value=action ...]` controls, Debian's `@include`,
//! `include` and `substack`.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    Required,
    Requisite,
    Sufficient,
    Optional,
    Include(String),
    Substack(String),
    /// `[value=action ...]`
    Bracket(Vec<(String, String)>),
    Unknown(String),
}

impl Control {
    /// The action a bracket control names for the PAM return `value`
    /// (`default` covers the rest; libpam makes what is still unset `bad`).
    pub fn bracket_action(&self, value: &str) -> Option<&str> {
        match self {
            Control::Bracket(pairs) => Some(
                pairs
                    .iter()
                    .find(|(v, _)| v == value)
                    .or_else(|| pairs.iter().find(|(v, _)| v == "default"))
                    .map_or("bad", |(_, a)| a.as_str()),
            ),
            _ => None,
        }
    }

    pub fn text(&self) -> String {
        match self {
            Control::Required => "required".into(),
            Control::Requisite => "requisite".into(),
            Control::Sufficient => "sufficient".into(),
            Control::Optional => "optional".into(),
            Control::Include(f) => format!("include {f}"),
            Control::Substack(f) => format!("substack {f}"),
            Control::Bracket(p) => format!(
                "[{}]",
                p.iter()
                    .map(|(v, a)| format!("{v}={a}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            Control::Unknown(s) => s.clone(),
        }
    }
}

/// A logical line: type, control, module, args (comments removed,
/// continuations joined).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawLine {
    pub lineno: usize,
    pub kind: String,
    pub control: Control,
    pub module: String,
    pub args: Vec<String>,
}

/// Parses a pam.d file. `@include X` becomes a line of kind `@include`.
pub fn parse(text: &str) -> Vec<RawLine> {
    let mut out = Vec::new();
    let mut pending = String::new();
    let mut start = 0;
    for (i, raw) in text.lines().enumerate() {
        if pending.is_empty() {
            start = i + 1;
        }
        let line = match raw.find('#') {
            Some(p) => &raw[..p],
            None => raw,
        };
        if let Some(stripped) = line.strip_suffix('\\') {
            pending.push_str(stripped);
            pending.push(' ');
            continue;
        }
        pending.push_str(line);
        let logical = std::mem::take(&mut pending);
        if let Some(l) = parse_logical(&logical, start) {
            out.push(l);
        }
    }
    if let Some(l) = parse_logical(&pending, start) {
        out.push(l);
    }
    out
}

fn parse_logical(line: &str, lineno: usize) -> Option<RawLine> {
    let mut words = line.split_whitespace();
    let kind = words.next()?.to_string();
    if kind == "@include" {
        let file = words.next().unwrap_or_default().to_string();
        return Some(RawLine {
            lineno,
            kind,
            control: Control::Include(file),
            module: String::new(),
            args: Vec::new(),
        });
    }
    let rest: Vec<&str> = words.collect();
    let joined = rest.join(" ");
    let (control_text, after) = if joined.starts_with('[') {
        let end = joined.find(']').unwrap_or(joined.len() - 1);
        (joined[..=end].to_string(), joined[end + 1..].to_string())
    } else {
        let mut it = joined.splitn(2, ' ');
        (
            it.next().unwrap_or_default().to_string(),
            it.next().unwrap_or_default().to_string(),
        )
    };
    let mut after = after.split_whitespace();
    let first = after.next().unwrap_or_default().to_string();
    let control = match control_text.as_str() {
        "required" => Control::Required,
        "requisite" => Control::Requisite,
        "sufficient" => Control::Sufficient,
        "optional" => Control::Optional,
        "include" => Control::Include(first.clone()),
        "substack" => Control::Substack(first.clone()),
        s if s.starts_with('[') => Control::Bracket(
            s.trim_start_matches('[')
                .trim_end_matches(']')
                .split_whitespace()
                .filter_map(|kv| {
                    let (k, v) = kv.split_once('=')?;
                    Some((k.to_ascii_lowercase(), v.to_ascii_lowercase()))
                })
                .collect(),
        ),
        s => Control::Unknown(s.to_string()),
    };
    let (module, args) = match control {
        Control::Include(_) | Control::Substack(_) => (String::new(), Vec::new()),
        _ => (first, after.map(str::to_string).collect()),
    };
    Some(RawLine {
        lineno,
        kind,
        control,
        module,
        args,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_controls_comments_and_continuations() {
        let text = "#%PAM-1.0\n@include common-auth\nauth [success=1 default=ignore]  pam_unix.so nullok # c\n\
                    auth required \\\n   pam_smsotp.so socket=/x\n-auth optional pam_x.so\n";
        let lines = parse(text);
        assert_eq!(lines.len(), 4, "{lines:#?}");
        assert_eq!(lines[0].control, Control::Include("common-auth".into()));
        assert_eq!(
            lines[1].control,
            Control::Bracket(vec![
                ("success".into(), "1".into()),
                ("default".into(), "ignore".into())
            ])
        );
        assert_eq!(lines[1].args, vec!["nullok"]);
        assert_eq!(lines[2].module, "pam_smsotp.so");
        assert_eq!(lines[2].args, vec!["socket=/x"]);
        assert_eq!(lines[2].lineno, 4);
        assert_eq!(lines[3].kind, "-auth");
    }
}
