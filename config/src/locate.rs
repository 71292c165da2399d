//! Mapping between byte offsets, lines and dotted key paths, so every
//! error can say where it is. toml_edit keeps spans; toml gives the serde
//! errors. Both parse the same (small) text.

use crate::error::ConfigError;
use serde::de::DeserializeOwned;
use std::ops::Range;
use std::path::Path;
use toml_edit::{Document, Item, Table, Value};

pub(crate) fn from_toml<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| {
        let span = e.span();
        let message = e.message().trim().to_string();
        let mut line = span.as_ref().map(|s| line_at(text, s.start));
        let mut key = span.and_then(|s| key_at(text, s.start));
        // Tagged tables (`[[provider]]`) are buffered by serde, so their
        // errors point at the whole table. For an unknown key the message
        // names it: find it inside that table.
        if let (Some(table), Some(field)) = (&key, unknown_field(&message)) {
            if let Some((l, candidate)) = find_unknown_field(text, table, field) {
                line = Some(l);
                key = Some(candidate);
            }
        }
        ConfigError {
            file: path.to_path_buf(),
            line,
            key,
            message,
        }
    })
}

/// `unknown field `colour`, expected ...` -> `colour`.
fn unknown_field(message: &str) -> Option<&str> {
    message.strip_prefix("unknown field `")?.split('`').next()
}

/// 1-based line of a byte offset.
pub(crate) fn line_at(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The line where the key path (`otp.length`, `provider[1].url`) is written.
/// Falls back to the nearest written parent when the key itself is absent.
pub(crate) fn line_of_key(text: &str, path: &str) -> Option<usize> {
    locate_key(text, path).map(|(line, _)| line)
}

/// The line of `path` and whether the key itself was found (rather than
/// only a parent).
fn locate_key(text: &str, path: &str) -> Option<(usize, bool)> {
    let doc = Document::parse(text).ok()?;
    let segments: Vec<&str> = path.split('.').collect();
    let mut best = None;
    let exact = walk(doc.as_table(), &segments, &mut best);
    best.map(|r| (line_at(text, r.start), exact))
}

/// Follows `segments` down from `table`, leaving the span of the deepest
/// key reached in `best`. True when every segment was found.
fn walk(table: &Table, segments: &[&str], best: &mut Option<Range<usize>>) -> bool {
    let Some((segment, rest)) = segments.split_first() else {
        return true;
    };
    let (name, index) = split_index(segment);
    let Some((key, item)) = table.get_key_value(name) else {
        return false;
    };
    if let Some(span) = key.span() {
        *best = Some(span);
    }
    match (item, index) {
        (Item::ArrayOfTables(array), Some(i)) => match array.get(i) {
            Some(t) => {
                if let Some(span) = t.span() {
                    *best = Some(span);
                }
                walk(t, rest, best)
            }
            None => false,
        },
        (Item::Table(t), None) => walk(t, rest, best),
        (Item::Value(Value::InlineTable(t)), None) => match rest {
            [] => true,
            [name] => match t.get_key_value(name) {
                Some((k, v)) => {
                    if let Some(span) = k.span().or_else(|| v.span()) {
                        *best = Some(span);
                    }
                    true
                }
                None => false,
            },
            _ => false,
        },
        (_, None) => rest.is_empty(),
        _ => false,
    }
}

/// For an unknown `field` reported against a table of an array of tables
/// (`provider[0]`), the first table of that array that holds the field.
fn find_unknown_field(text: &str, table: &str, field: &str) -> Option<(usize, String)> {
    let (array, _) = split_index(table);
    // A config has a handful of providers; the bound keeps a hostile file cheap.
    (0..256).find_map(|i| {
        let candidate = format!("{array}[{i}].{field}");
        match locate_key(text, &candidate) {
            Some((line, true)) => Some((line, candidate)),
            _ => None,
        }
    })
}

fn split_index(segment: &str) -> (&str, Option<usize>) {
    match segment.split_once('[') {
        Some((name, rest)) => (name, rest.trim_end_matches(']').parse().ok()),
        None => (segment, None),
    }
}

/// The dotted key path whose key or value covers `offset`.
pub(crate) fn key_at(text: &str, offset: usize) -> Option<String> {
    let doc = Document::parse(text).ok()?;
    let mut path = Vec::new();
    find_in_table(doc.as_table(), offset, &mut path).then(|| path.join("."))
}

fn covers(span: Option<Range<usize>>, offset: usize) -> bool {
    span.is_some_and(|s| s.contains(&offset) || s.start == offset)
}

fn find_in_table(table: &Table, offset: usize, path: &mut Vec<String>) -> bool {
    for (key, item) in table.iter() {
        let Some((k, _)) = table.get_key_value(key) else {
            continue;
        };
        match item {
            Item::Table(t) => {
                path.push(key.to_string());
                if covers(k.span(), offset) || find_in_table(t, offset, path) {
                    return true;
                }
                path.pop();
            }
            Item::ArrayOfTables(a) => {
                for (i, t) in a.iter().enumerate() {
                    path.push(format!("{key}[{i}]"));
                    if find_in_table(t, offset, path) || covers(t.span(), offset) {
                        return true;
                    }
                    path.pop();
                }
            }
            Item::Value(Value::InlineTable(t)) => {
                path.push(key.to_string());
                if covers(k.span(), offset) {
                    return true;
                }
                for (ikey, v) in t.iter() {
                    let kspan = t.key(ikey).and_then(|k| k.span());
                    if covers(kspan, offset) || covers(v.span(), offset) {
                        path.push(ikey.to_string());
                        return true;
                    }
                }
                if covers(item.span(), offset) {
                    return true;
                }
                path.pop();
            }
            _ => {
                if covers(k.span(), offset) || covers(item.span(), offset) {
                    path.push(key.to_string());
                    return true;
                }
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "socket = \"/x\"\n\n[otp]\nlength = 12\n\n[[provider]]\ntype = \"outbox\"\n\n[[provider]]\ntype = \"http\"\nurl = \"bad\"\nheaders = { A = \"b\" }\n";

    #[test]
    fn lines_of_nested_keys() {
        assert_eq!(line_of_key(TEXT, "socket"), Some(1));
        assert_eq!(line_of_key(TEXT, "otp.length"), Some(4));
        assert_eq!(line_of_key(TEXT, "provider[1].url"), Some(11));
        assert_eq!(line_of_key(TEXT, "provider[1].headers.A"), Some(12));
        // Absent key: nearest parent.
        assert_eq!(line_of_key(TEXT, "otp.expiry_seconds"), Some(3));
    }

    #[test]
    fn keys_at_offsets() {
        let off = TEXT.find("12").unwrap();
        assert_eq!(key_at(TEXT, off).as_deref(), Some("otp.length"));
        let off = TEXT.find("\"bad\"").unwrap();
        assert_eq!(key_at(TEXT, off).as_deref(), Some("provider[1].url"));
    }
}
