//! The custom HTTP provider's templates: the number and the text put
//! into the URL and the payload, each escaped for the place it lands in
//! (query, path, JSON string, form field), so a message with quotes, `&`
//! or newlines can neither break the request nor inject fields into it.

use reqwest::Url;
use smsotp_config::{ContentType, Template, Var};

/// Fills in the URL template. Values are form-encoded (`byte_serialize`),
/// which leaves only unreserved characters, so nothing can add a query
/// parameter or a path segment. In the query a space is `+`, as gateways
/// expect; before the `?` it is `%20`, since `+` in a path is a literal plus.
pub(crate) fn render_url(url: &Template, mobile: &str, body: &str) -> String {
    url.render(|var, out| {
        let Some(value) = payload_value(var, mobile, body) else {
            return;
        };
        let in_query = out.contains('?');
        for piece in form_urlencoded::byte_serialize(value.as_bytes()) {
            if in_query {
                out.push_str(piece);
            } else {
                // byte_serialize writes a real '+' as %2B, so every '+' it
                // emits stands for a space.
                out.push_str(&piece.replace('+', "%20"));
            }
        }
    })
}

/// Fills in the payload template.
///
/// JSON: a bare placeholder becomes a complete JSON string, quotes
/// included, so `{"to": {{mobile}}, "text": {{body}}}` is valid whatever
/// the body holds. A placeholder already inside quotes, as in WSO2's
/// `{"dst":"$ctx.num"}`, gets the escaped text without quotes, so legacy
/// templates keep working and stay valid JSON.
///
/// Form: the value is form-encoded, no quotes.
pub(crate) fn render_payload(
    payload: &Template,
    content_type: ContentType,
    mobile: &str,
    body: &str,
) -> String {
    payload.render(|var, out| {
        let Some(value) = payload_value(var, mobile, body) else {
            return;
        };
        match content_type {
            ContentType::Json => {
                let quoted = json_string(value);
                if inside_json_string(out) {
                    out.push_str(&quoted[1..quoted.len() - 1]);
                } else {
                    out.push_str(&quoted);
                }
            }
            ContentType::Form => out.extend(form_urlencoded::byte_serialize(value.as_bytes())),
        }
    })
}

/// Config validation allows only `{{mobile}}` and `{{body}}` in a URL or a
/// payload; anything else renders as nothing rather than panicking.
fn payload_value<'a>(var: Var, mobile: &'a str, body: &'a str) -> Option<&'a str> {
    match var {
        Var::Mobile => Some(mobile),
        Var::Body => Some(body),
        _ => None,
    }
}

fn json_string(value: &str) -> String {
    // `Value`'s Display cannot fail, unlike `to_string`'s signature.
    serde_json::Value::String(value.to_owned()).to_string()
}

/// Whether the JSON text so far ends inside an open string literal.
fn inside_json_string(text: &str) -> bool {
    let mut inside = false;
    let mut escaped = false;
    for c in text.chars() {
        if escaped {
            escaped = false;
        } else if inside && c == '\\' {
            escaped = true;
        } else if c == '"' {
            inside = !inside;
        }
    }
    inside
}

/// `scheme://host[:port]/path` with placeholders shown by name: no user
/// info, query or fragment, and no number or code.
pub(crate) fn safe_endpoint(url: &Template) -> String {
    const MOBILE: &str = "SMSOTPxMOBILEx";
    const BODY: &str = "SMSOTPxBODYx";
    let sample = url.render(|var, out| match var {
        Var::Mobile => out.push_str(MOBILE),
        Var::Body => out.push_str(BODY),
        _ => {}
    });
    match Url::parse(&sample) {
        Ok(u) => {
            let mut s = format!("{}://{}", u.scheme(), u.host_str().unwrap_or(""));
            if let Some(port) = u.port() {
                s.push_str(&format!(":{port}"));
            }
            s.push_str(u.path());
            s.replace(MOBILE, "{{mobile}}").replace(BODY, "{{body}}")
        }
        Err(_) => "<unparsable url>".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    const NUM: &str = "+15551234567";

    fn payload_template(text: &str) -> Template {
        Template::parse(text, &Var::PAYLOAD).unwrap()
    }

    // ---- pure rendering ------------------------------------------------

    #[test]
    fn url_values_are_form_encoded_in_the_query() {
        let t = payload_template("https://gw.example/send?key=K&to={{mobile}}&text={{ body }}");
        let body = "a&b=c+d e \"q\" \\ ü\n✓";
        let url = render_url(&t, NUM, body);
        assert_eq!(
            url,
            "https://gw.example/send?key=K&to=%2B15551234567\
             &text=a%26b%3Dc%2Bd+e+%22q%22+%5C+%C3%BC%0A%E2%9C%93"
        );
        let parsed = Url::parse(&url).unwrap();
        let q: BTreeMap<_, _> = parsed.query_pairs().into_owned().collect();
        assert_eq!(q["to"], NUM);
        assert_eq!(q["text"], body);
        assert_eq!(q["key"], "K");
        assert_eq!(q.len(), 3, "no injected parameters");
    }

    #[test]
    fn url_legacy_ctx_placeholders() {
        let t = payload_template("https://gw.example/sms?to=$ctx.num&text=$ctx.msg");
        let url = render_url(&t, NUM, "code 12 34");
        assert_eq!(
            url,
            "https://gw.example/sms?to=%2B15551234567&text=code+12+34"
        );
    }

    #[test]
    fn url_path_values_use_percent20_and_cannot_add_segments() {
        let t = payload_template("https://gw.example/to/{{mobile}}/{{body}}?x=1");
        let url = render_url(&t, NUM, "a b/c?d#e");
        assert_eq!(
            url,
            "https://gw.example/to/%2B15551234567/a%20b%2Fc%3Fd%23e?x=1"
        );
        assert_eq!(
            Url::parse(&url).unwrap().path_segments().unwrap().count(),
            3
        );
    }

    #[test]
    fn json_payload_escapes_everything_and_adds_quotes() {
        let t = payload_template(r#"{"to": {{ mobile }}, "text": {{body}}}"#);
        let body = "Code \"42\" \\ path\nline2\ttab ü ✓ \u{1}";
        let out = render_payload(&t, ContentType::Json, NUM, body);
        assert_eq!(
            out,
            r#"{"to": "+15551234567", "text": "Code \"42\" \\ path\nline2\ttab ü ✓ \u0001"}"#
        );
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["to"], NUM);
        assert_eq!(v["text"], body);
    }

    #[test]
    fn json_payload_legacy_quoted_placeholders_stay_valid() {
        // WSO2's Plivo example quotes the placeholders itself.
        let t = payload_template(r#"{"src":"+9400","dst":"$ctx.num","text":"$ctx.msg"}"#);
        let body = "say \"hi\" \\o/";
        let out = render_payload(&t, ContentType::Json, NUM, body);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["dst"], NUM);
        assert_eq!(v["text"], body);
        assert_eq!(v["src"], "+9400");
        // An escaped quote in literal text does not confuse the tracking.
        let t = payload_template(r#"{"a":"x\"y","b":{{body}}}"#);
        let out = render_payload(&t, ContentType::Json, NUM, "z");
        assert_eq!(out, r#"{"a":"x\"y","b":"z"}"#);
    }

    #[test]
    fn form_payload_is_url_encoded_without_quotes() {
        let t = payload_template("Body=$ctx.msg&To={{mobile}}&From=%2B15550001111");
        let body = "a&b=c+d e ü\n\"";
        let out = render_payload(&t, ContentType::Form, NUM, body);
        assert_eq!(
            out,
            "Body=a%26b%3Dc%2Bd+e+%C3%BC%0A%22&To=%2B15551234567&From=%2B15550001111"
        );
        let pairs: BTreeMap<_, _> = form_urlencoded::parse(out.as_bytes())
            .into_owned()
            .collect();
        assert_eq!(pairs["Body"], body);
        assert_eq!(pairs["To"], NUM);
        assert_eq!(pairs["From"], "+15550001111");
        assert_eq!(pairs.len(), 3);
    }

    #[test]
    fn endpoint_hides_query_and_userinfo() {
        let t = payload_template("https://user:pw@gw.example:8443/v1/{{mobile}}?api_key=SECRET");
        let e = safe_endpoint(&t);
        assert_eq!(e, "https://gw.example:8443/v1/{{mobile}}");
    }
}
