//! Checks a form request against an OpenAPI request-body schema: names,
//! required fields, types, lengths, patterns, enums and ranges, with
//! `$ref`s resolved inside the document. Shared by the Twilio and Vonage
//! tests (included with `#[path]`).

#![allow(dead_code)] // each including test uses part of it

use serde_json::Value;

pub fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let pointer = r.strip_prefix('#').expect("local $ref");
            resolve(
                doc,
                doc.pointer(pointer)
                    .unwrap_or_else(|| panic!("dangling $ref {r}")),
            )
        }
        None => v,
    }
}

/// Every problem with `form` under `schema` (an object schema).
pub fn check_form(doc: &Value, schema: &Value, form: &[(String, String)]) -> Vec<String> {
    let schema = resolve(doc, schema);
    let props = schema["properties"].as_object().expect("properties");
    let mut errors = Vec::new();
    for req in schema["required"].as_array().into_iter().flatten() {
        let req = req.as_str().unwrap();
        if !form.iter().any(|(k, _)| k == req) {
            errors.push(format!("required field {req} missing"));
        }
    }
    for (k, v) in form {
        if form.iter().filter(|(k2, _)| k2 == k).count() > 1 {
            errors.push(format!("{k} sent twice"));
        }
        let Some(p) = props.get(k) else {
            errors.push(format!("{k} is not a field of the request"));
            continue;
        };
        errors.extend(check_value(doc, p, k, v));
    }
    errors
}

fn check_value(doc: &Value, p: &Value, k: &str, v: &str) -> Vec<String> {
    let p = resolve(doc, p);
    let mut errors = Vec::new();
    match p["type"].as_str().unwrap_or("string") {
        "integer" => match v.parse::<i64>() {
            Ok(n) => {
                if p["minimum"].as_i64().is_some_and(|m| n < m)
                    || p["maximum"].as_i64().is_some_and(|m| n > m)
                {
                    errors.push(format!("{k}={n} out of range"));
                }
            }
            Err(_) => errors.push(format!("{k} is not an integer")),
        },
        "boolean" => {
            if v != "true" && v != "false" {
                errors.push(format!("{k} is not a boolean"));
            }
        }
        "number" => {
            if v.parse::<f64>().is_err() {
                errors.push(format!("{k} is not a number"));
            }
        }
        _ => {
            let len = v.chars().count() as u64;
            if p["minLength"].as_u64().is_some_and(|m| len < m)
                || p["maxLength"].as_u64().is_some_and(|m| len > m)
            {
                errors.push(format!("{k} has length {len} outside the spec's bounds"));
            }
            if let Some(pat) = p["pattern"].as_str() {
                let re = regex::Regex::new(pat).unwrap();
                if !re.is_match(v) {
                    errors.push(format!("{k} does not match {pat}"));
                }
            }
        }
    }
    if let Some(e) = p["enum"].as_array() {
        if !e
            .iter()
            .any(|x| x.as_str() == Some(v) || x.to_string().as_str() == v)
        {
            errors.push(format!("{k}={v} not in the enum"));
        }
    }
    errors
}

/// A path parameter's schema check (`AccountSid`).
pub fn check_param(doc: &Value, param: &Value, value: &str) -> Vec<String> {
    check_value(
        doc,
        &param["schema"],
        param["name"].as_str().unwrap_or("?"),
        value,
    )
}
