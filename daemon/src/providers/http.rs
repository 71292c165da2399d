//! The custom HTTP provider (the WSO2 "custom SMS provider"): one request
//! per message to an admin-configured URL, with the number and the text
//! put into the URL and/or a JSON or form payload.
//!
//! Two rules shape this file:
//! - Values are escaped for the place they land in (query, path, JSON
//!   string, form field), so a message with quotes, `&` or newlines can
//!   neither break the request nor inject fields into it.
//! - Error text goes to logs and audit records. It never holds the full
//!   rendered URL (its query often carries API keys, and it carries the
//!   number and the code), nor the number or the message body.

use super::{ProviderError, Receipt, SendFuture, Sms, SmsProvider};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use reqwest::{Client, Method, Url};
use smsotp_config::{ContentType, HttpConfig, HttpMethod, Template, Var};
use std::time::Duration;
use zeroize::Zeroizing;

/// How much of an error response we read: enough for any gateway's error
/// JSON, bounded so a hostile or broken endpoint cannot make us buffer
/// without limit.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// How much of that body goes into the error message.
const MAX_SNIPPET: usize = 200;

pub struct HttpProvider {
    name: String,
    /// Built once: it keeps the connection pool and TLS session cache, so
    /// the second code to the same gateway skips the handshake.
    client: Client,
    url: Template,
    method: Method,
    content_type: ContentType,
    payload: Option<Template>,
    headers: HeaderMap,
    success_codes: Vec<u16>,
    timeout: Duration,
    /// `scheme://host[:port]/path` of the URL, with placeholders shown by
    /// name: the only form of the URL that may appear in errors.
    endpoint: String,
}

impl std::fmt::Debug for HttpProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Headers hold credentials and the URL may hold API keys.
        f.debug_struct("HttpProvider")
            .field("name", &self.name)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl HttpProvider {
    pub fn new(cfg: &HttpConfig) -> Result<Self, ProviderError> {
        let name = cfg.name.clone();
        let bad_config =
            |what: String| ProviderError::Permanent(format!("provider {name}: {what}"));

        // The daemon installs the ring provider at startup; doing it here as
        // well (a no-op Err if one is already installed) keeps reqwest from
        // panicking when this is used from a test or another binary that
        // forgot to.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = Client::builder()
            // A redirect would resend the number and the code (in the URL
            // or the body) to a host the admin never configured.
            .redirect(reqwest::redirect::Policy::none())
            // `timeout` bounds the whole exchange, body included; the
            // connect timeout only makes a dead host fail with a clearer
            // error than the overall deadline.
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout)
            .user_agent(concat!("smsotpd/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| bad_config(format!("cannot build the HTTP client: {e}")))?;

        let mut headers = HeaderMap::with_capacity(cfg.headers.len() + 1);
        for h in &cfg.headers {
            let hname = HeaderName::from_bytes(h.name.as_bytes())
                .map_err(|_| bad_config(format!("header {:?} has an invalid name", h.name)))?;
            // Never echo the value: it is usually a credential.
            let mut value = HeaderValue::from_str(&h.value)
                .map_err(|_| bad_config(format!("header {:?} has an invalid value", h.name)))?;
            // Keeps it out of reqwest's Debug output and out of HPACK tables.
            value.set_sensitive(true);
            // `append`, not `insert`: names differing only in case are two
            // entries in the config and the admin meant both.
            headers.append(hname, value);
        }

        if let (Some(p), ContentType::Json) = (&cfg.payload, cfg.content_type) {
            // Catch a broken JSON template at startup rather than on every
            // login. The sample values exercise the escaping.
            let sample = render_payload(p, ContentType::Json, "+15550000000", "a \"b\"\n\\c");
            if serde_json::from_str::<serde::de::IgnoredAny>(&sample).is_err() {
                return Err(bad_config(
                    "payload does not render to valid JSON; write placeholders bare, \
                     e.g. '{\"to\": {{mobile}}, \"text\": {{body}}}'"
                        .to_string(),
                ));
            }
        }

        Ok(HttpProvider {
            client,
            url: cfg.url.clone(),
            method: match cfg.method {
                HttpMethod::Get => Method::GET,
                HttpMethod::Post => Method::POST,
                HttpMethod::Put => Method::PUT,
            },
            content_type: cfg.content_type,
            payload: cfg.payload.clone(),
            headers,
            success_codes: cfg.success_codes.clone(),
            timeout: cfg.timeout,
            endpoint: safe_endpoint(&cfg.url),
            name,
        })
    }

    async fn deliver(&self, sms: &Sms) -> Result<Receipt, ProviderError> {
        let url_text = Zeroizing::new(render_url(&self.url, sms.to.e164(), &sms.body));
        let secrets = Secrets::new(&url_text, sms);
        let url = Url::parse(&url_text).map_err(|e| {
            ProviderError::Permanent(format!(
                "{}: the url does not parse once filled in ({}): {e}",
                self.name, self.endpoint
            ))
        })?;

        let mut headers = self.headers.clone();
        let mut request = self.client.request(self.method.clone(), url);
        if let Some(p) = &self.payload {
            // Whatever the bytes pass through inside reqwest and hyper is
            // beyond our reach, so the payload is not wrapped in Zeroizing:
            // it would wipe one copy of several.
            let body = render_payload(p, self.content_type, sms.to.e164(), &sms.body);
            // An explicit Content-Type among the static headers wins: some
            // gateways want a vendor type or a charset parameter.
            if !headers.contains_key(CONTENT_TYPE) {
                headers.insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static(match self.content_type {
                        ContentType::Json => "application/json",
                        ContentType::Form => "application/x-www-form-urlencoded",
                    }),
                );
            }
            request = request.body(body);
        }
        let response = request
            .headers(headers)
            .send()
            .await
            .map_err(|e| self.transport_error(e, &secrets))?;

        let status = response.status().as_u16();
        if self.success_codes.contains(&status) {
            // The body is not read: the status is the gateway's answer, and
            // a slow body must not hold up a login that has already worked.
            return Ok(Receipt {
                detail: format!("HTTP {status}"),
            });
        }

        let body = read_bounded(response, MAX_ERROR_BODY).await;
        let mut msg = format!("HTTP {status} from {}", self.name);
        if (300..400).contains(&status) {
            msg.push_str(" (redirects are not followed; set url to the final address)");
        }
        let snippet = snippet(&body, &secrets);
        if !snippet.is_empty() {
            msg.push_str(": ");
            msg.push_str(&snippet);
        }
        if status == 429 || status >= 500 {
            Err(ProviderError::Retryable(msg))
        } else {
            Err(ProviderError::Permanent(msg))
        }
    }

    /// No response at all: a refused or reset connection, a TLS failure, a
    /// timeout. All are worth another try (here or with the next provider).
    fn transport_error(&self, e: reqwest::Error, secrets: &Secrets) -> ProviderError {
        let what = if e.is_timeout() {
            format!("timed out after {}s", self.timeout.as_secs_f32())
        } else if e.is_connect() {
            "cannot connect".to_string()
        } else {
            "request failed".to_string()
        };
        let permanent = e.is_builder();
        // reqwest's own Display includes the full URL; without_url() drops
        // it, and the scrub below catches it should a cause repeat it.
        let cause = error_chain(&e.without_url());
        let msg = secrets.scrub(&format!(
            "{}: {what} ({}): {cause}",
            self.name, self.endpoint
        ));
        if permanent {
            ProviderError::Permanent(msg)
        } else {
            ProviderError::Retryable(msg)
        }
    }
}

impl SmsProvider for HttpProvider {
    fn name(&self) -> &str {
        &self.name
    }

    fn send<'a>(&'a self, sms: &'a Sms) -> SendFuture<'a> {
        Box::pin(self.deliver(sms))
    }
}

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
fn safe_endpoint(url: &Template) -> String {
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

/// Strings that must not reach a log: the rendered URL and its query, the
/// number and the message in the forms a gateway might echo them.
struct Secrets {
    /// (secret, replacement), longest first so a URL is replaced whole
    /// before the number inside it.
    items: Vec<(String, String)>,
}

impl Secrets {
    fn new(url: &str, sms: &Sms) -> Self {
        let masked = sms.to.masked(4);
        let mut items = vec![
            (url.to_string(), "<url>".to_string()),
            (sms.to.e164().to_string(), masked.clone()),
            (sms.to.digits().to_string(), masked),
            (sms.body.to_string(), "<message>".to_string()),
            (
                form_urlencoded::byte_serialize(sms.body.as_bytes()).collect(),
                "<message>".to_string(),
            ),
            (
                json_string(&sms.body).trim_matches('"').to_string(),
                "<message>".to_string(),
            ),
        ];
        if let Some((_, query)) = url.split_once('?') {
            items.push((query.to_string(), "<query>".to_string()));
        }
        // Very short strings (a test body of "x") would blank out ordinary
        // words; real numbers and messages are far longer.
        items.retain(|(s, _)| s.len() >= 4);
        items.sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
        Secrets { items }
    }

    fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (secret, replacement) in &self.items {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), replacement);
            }
        }
        out
    }
}

impl Drop for Secrets {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        for (s, _) in &mut self.items {
            s.zeroize();
        }
    }
}

/// Reads at most `limit` bytes of the body; an error or the overall
/// timeout just ends the read with what arrived.
async fn read_bounded(mut response: reqwest::Response, limit: usize) -> Vec<u8> {
    let mut buf = Vec::new();
    while buf.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let take = chunk.len().min(limit - buf.len());
                buf.extend_from_slice(&chunk[..take]);
            }
            Ok(None) | Err(_) => break,
        }
    }
    buf
}

/// A log-safe excerpt of an error body: secrets scrubbed first (so a cut
/// cannot leave half a number), control and bidi characters removed (no
/// forged log lines), whitespace collapsed, then at most 200 bytes.
fn snippet(body: &[u8], secrets: &Secrets) -> String {
    let text = secrets.scrub(&String::from_utf8_lossy(body));
    let cleaned: String = text
        .chars()
        .map(|c| {
            if c.is_control() || is_bidi_or_invisible(c) {
                ' '
            } else {
                c
            }
        })
        .collect();
    let mut out = cleaned.split_whitespace().collect::<Vec<_>>().join(" ");
    if out.len() > MAX_SNIPPET {
        let mut cut = MAX_SNIPPET;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push_str("...");
    }
    out
}

fn is_bidi_or_invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// `e: cause: cause`, skipping a cause that repeats its parent's text.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use smsotp_config::{Mobile, ProviderConfig};
    use std::collections::BTreeMap;
    use std::path::Path;
    use std::time::Instant;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    const NUM: &str = "+15551234567";

    fn config(provider_toml: &str) -> HttpConfig {
        let toml = format!("[[provider]]\nname = \"gw\"\ntype = \"http\"\n{provider_toml}");
        let cfg = smsotp_config::parse(Path::new("t.toml"), &toml).unwrap();
        match cfg.providers.into_iter().next() {
            Some(ProviderConfig::Http(c)) => c,
            other => panic!("expected http, got {other:?}"),
        }
    }

    fn provider(provider_toml: &str) -> HttpProvider {
        HttpProvider::new(&config(provider_toml)).unwrap()
    }

    fn payload_template(text: &str) -> Template {
        Template::parse(text, &Var::PAYLOAD).unwrap()
    }

    fn sms(body: &str) -> Sms {
        Sms {
            to: Mobile::parse(NUM).unwrap(),
            body: Zeroizing::new(body.to_string()),
        }
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

    #[test]
    fn snippet_is_bounded_clean_and_scrubbed() {
        let s = sms("Your code is 918273");
        let secrets = Secrets::new("http://h/x?key=SECRETKEY", &s);
        let body = format!(
            "err\x1b[31m\r\nfake log line\u{202E} for {NUM} msg Your code is 918273 key=SECRETKEY {}",
            "y".repeat(1000)
        );
        let out = snippet(body.as_bytes(), &secrets);
        assert!(out.len() <= MAX_SNIPPET + 3, "{}", out.len());
        assert!(!out.chars().any(|c| c.is_control()), "{out:?}");
        assert!(!out.contains('\u{202E}'));
        assert!(!out.contains("5551234567"), "{out}");
        assert!(!out.contains("918273"), "{out}");
        assert!(out.contains("*******4567"), "{out}");
        assert!(out.starts_with("err [31m fake log line for"), "{out}");
        // Multi-byte text is cut on a character boundary.
        let out = snippet("é".repeat(300).as_bytes(), &secrets);
        assert!(out.ends_with("..."));
    }

    #[test]
    fn invalid_json_payload_is_refused_at_startup() {
        let cfg = config(
            "url = \"http://127.0.0.1:9/x\"\npayload = '{\"to\": {{mobile}}, \"text\": {{body}}'\n",
        );
        match HttpProvider::new(&cfg) {
            Err(ProviderError::Permanent(m)) => assert!(m.contains("valid JSON"), "{m}"),
            other => panic!("expected Permanent, got {:?}", other.map(|_| ())),
        }
    }

    // ---- against a loopback server ---------------------------------------

    /// What the test server received.
    #[derive(Debug)]
    struct Captured {
        request_line: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    impl Captured {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }
        fn body(&self) -> &str {
            std::str::from_utf8(&self.body).unwrap()
        }
    }

    fn reply(status: u16, extra_headers: &str, body: &str) -> String {
        format!(
            "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n{extra_headers}\r\n{body}",
            body.len()
        )
    }

    /// Serves one connection with a canned `response` and hands back the
    /// raw request.
    async fn serve_once(response: String) -> (String, tokio::task::JoinHandle<Captured>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut raw = Vec::new();
            let mut buf = [0u8; 4096];
            let head_end = loop {
                let n = sock.read(&mut buf).await.unwrap();
                assert!(n > 0, "client closed before sending headers");
                raw.extend_from_slice(&buf[..n]);
                if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i;
                }
            };
            let head = String::from_utf8(raw[..head_end].to_vec()).unwrap();
            let mut lines = head.split("\r\n");
            let request_line = lines.next().unwrap().to_string();
            let headers: Vec<(String, String)> = lines
                .map(|l| {
                    let (n, v) = l.split_once(':').unwrap();
                    (n.trim().to_string(), v.trim().to_string())
                })
                .collect();
            let len: usize = headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                .map(|(_, v)| v.parse().unwrap())
                .unwrap_or(0);
            let mut body = raw[head_end + 4..].to_vec();
            while body.len() < len {
                let n = sock.read(&mut buf).await.unwrap();
                assert!(n > 0);
                body.extend_from_slice(&buf[..n]);
            }
            // The client may hang up before reading it all (it reads at
            // most 64 KiB of an error body), so a failed write is fine.
            let _ = sock.write_all(response.as_bytes()).await;
            let _ = sock.shutdown().await;
            Captured {
                request_line,
                headers,
                body,
            }
        });
        (base, task)
    }

    #[tokio::test]
    async fn json_post_is_exact_with_headers() {
        let (base, server) = serve_once(reply(201, "", "{\"id\":\"m1\"}")).await;
        let p = provider(&format!(
            "url = \"{base}/api/v1/messages\"\n\
             payload = '{{\"to\": {{{{mobile}}}}, \"text\": {{{{ body }}}}}}'\n\
             headers = {{ Authorization = \"Bearer tok:en,1\", X-Tags = \"a:b, c:d\" }}\n"
        ));
        let body = "Your code is 123456.\n\"Don't\" share \\ it ✓";
        let r = p.send(&sms(body)).await.unwrap();
        assert_eq!(r.detail, "HTTP 201");
        let c = server.await.unwrap();
        assert_eq!(c.request_line, "POST /api/v1/messages HTTP/1.1");
        assert_eq!(c.header("content-type"), Some("application/json"));
        assert_eq!(c.header("authorization"), Some("Bearer tok:en,1"));
        assert_eq!(c.header("x-tags"), Some("a:b, c:d"));
        let expected = format!(
            "{{\"to\": \"{NUM}\", \"text\": {}}}",
            serde_json::to_string(body).unwrap()
        );
        assert_eq!(c.body(), expected);
        let v: serde_json::Value = serde_json::from_slice(&c.body).unwrap();
        assert_eq!(v["text"], body);
        assert_eq!(v["to"], NUM);
    }

    #[tokio::test]
    async fn form_put_decodes_to_the_values() {
        let (base, server) = serve_once(reply(200, "", "")).await;
        let p = provider(&format!(
            "url = \"{base}/send\"\nmethod = \"PUT\"\ncontent_type = \"form\"\n\
             payload = 'To={{{{mobile}}}}&Body=$ctx.msg'\n"
        ));
        let body = "code=12&34 + more ü";
        p.send(&sms(body)).await.unwrap();
        let c = server.await.unwrap();
        assert_eq!(c.request_line, "PUT /send HTTP/1.1");
        assert_eq!(
            c.header("content-type"),
            Some("application/x-www-form-urlencoded")
        );
        let pairs: BTreeMap<_, _> = form_urlencoded::parse(&c.body).into_owned().collect();
        assert_eq!(pairs["To"], NUM);
        assert_eq!(pairs["Body"], body);
        assert_eq!(pairs.len(), 2);
    }

    #[tokio::test]
    async fn get_with_legacy_placeholders_in_the_query() {
        let (base, server) = serve_once(reply(200, "", "ok")).await;
        let p = provider(&format!(
            "method = \"GET\"\nurl = \"{base}/sms/json?api_key=K&to=$ctx.num&text=$ctx.msg\"\n"
        ));
        let body = "Code: 42 & more";
        assert_eq!(p.send(&sms(body)).await.unwrap().detail, "HTTP 200");
        let c = server.await.unwrap();
        let target = c
            .request_line
            .strip_prefix("GET ")
            .unwrap()
            .strip_suffix(" HTTP/1.1")
            .unwrap();
        let url = Url::parse(&format!("http://h{target}")).unwrap();
        assert_eq!(url.path(), "/sms/json");
        let q: BTreeMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(q["to"], NUM);
        assert_eq!(q["text"], body);
        assert_eq!(q["api_key"], "K");
        assert!(c.body.is_empty());
        assert_eq!(c.header("content-type"), None);
    }

    #[tokio::test]
    async fn static_content_type_header_wins() {
        let (base, server) = serve_once(reply(202, "", "")).await;
        let p = provider(&format!(
            "url = \"{base}/x\"\npayload = '{{\"t\": {{{{body}}}}}}'\n\
             headers = {{ Content-Type = \"application/vnd.gw+json; charset=utf-8\" }}\n"
        ));
        p.send(&sms("hello")).await.unwrap();
        let c = server.await.unwrap();
        let cts: Vec<_> = c
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("content-type"))
            .collect();
        assert_eq!(cts.len(), 1);
        assert_eq!(cts[0].1, "application/vnd.gw+json; charset=utf-8");
    }

    async fn status_result(status: u16, body: &str) -> Result<Receipt, ProviderError> {
        let (base, server) = serve_once(reply(status, "", body)).await;
        let p = provider(&format!(
            "url = \"{base}/x?api_key=SECRETKEY\"\npayload = '{{\"to\": {{{{mobile}}}}, \"t\": {{{{body}}}}}}'\n"
        ));
        let r = p.send(&sms("Your code is 918273")).await;
        server.await.unwrap();
        r
    }

    #[tokio::test]
    async fn server_error_is_retryable_with_a_clean_snippet() {
        match status_result(500, "upstream\r\nbroke for +15551234567").await {
            Err(ProviderError::Retryable(m)) => {
                assert!(m.starts_with("HTTP 500 from gw: upstream broke for"), "{m}");
                assert!(!m.contains("5551234567"), "{m}");
                assert!(!m.contains("SECRETKEY"), "{m}");
            }
            other => panic!("expected Retryable, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn too_many_requests_is_retryable() {
        assert!(matches!(
            status_result(429, "").await,
            Err(ProviderError::Retryable(m)) if m == "HTTP 429 from gw"
        ));
    }

    #[tokio::test]
    async fn client_error_is_permanent() {
        let long = "e".repeat(70 * 1024);
        match status_result(400, &long).await {
            Err(ProviderError::Permanent(m)) => {
                assert!(m.starts_with("HTTP 400 from gw: eeee"), "{m}");
                assert!(m.len() <= "HTTP 400 from gw: ".len() + MAX_SNIPPET + 3);
            }
            other => panic!("expected Permanent, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn status_outside_success_codes_fails() {
        let (base, server) = serve_once(reply(200, "", "")).await;
        let p = provider(&format!(
            "url = \"{base}/x\"\npayload = '{{\"t\": {{{{body}}}}}}'\nsuccess_codes = [202]\n"
        ));
        assert!(matches!(
            p.send(&sms("hello")).await,
            Err(ProviderError::Permanent(m)) if m == "HTTP 200 from gw"
        ));
        server.await.unwrap();
    }

    #[tokio::test]
    async fn redirect_is_not_followed() {
        // The redirect target counts connections; it must see none.
        let target = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target_addr = target.local_addr().unwrap();
        let location = format!("Location: http://{target_addr}/steal\r\n");
        let (base, server) = serve_once(reply(302, &location, "")).await;
        let p = provider(&format!(
            "url = \"{base}/x\"\npayload = '{{\"t\": {{{{body}}}}}}'\n"
        ));
        match p.send(&sms("Your code is 918273")).await {
            Err(ProviderError::Permanent(m)) => {
                assert!(m.starts_with("HTTP 302 from gw"), "{m}");
                assert!(m.contains("not followed"), "{m}");
            }
            other => panic!("expected Permanent, got {other:?}"),
        }
        server.await.unwrap();
        let accepted = tokio::time::timeout(Duration::from_millis(200), target.accept()).await;
        assert!(accepted.is_err(), "the redirect was followed");
    }

    #[tokio::test]
    async fn silent_server_times_out_as_retryable() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // Accepts, reads, never answers; holds the socket open.
        let _server = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            while sock.read(&mut buf).await.map(|n| n > 0).unwrap_or(false) {}
        });
        let p = provider(&format!(
            "url = \"http://{addr}/x?api_key=SECRETKEY&to={{{{mobile}}}}\"\n\
             payload = '{{\"t\": {{{{body}}}}}}'\ntimeout_seconds = 1\n"
        ));
        let start = Instant::now();
        let r = p.send(&sms("Your code is 918273")).await;
        let elapsed = start.elapsed();
        assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
        assert!(elapsed >= Duration::from_millis(900), "{elapsed:?}");
        match r {
            Err(ProviderError::Retryable(m)) => {
                assert!(m.contains("timed out"), "{m}");
                assert!(m.contains(&format!("http://{addr}/x")), "{m}");
                assert!(!m.contains("SECRETKEY"), "{m}");
                assert!(!m.contains("5551234567"), "{m}");
                assert!(!m.contains("918273"), "{m}");
            }
            other => panic!("expected Retryable, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn refused_connection_is_retryable_and_hides_the_query() {
        // Bind then drop: the port is very likely closed afterwards.
        let addr = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        let p = provider(&format!(
            "method = \"GET\"\nurl = \"http://{addr}/sms?api_key=SECRETKEY&to=$ctx.num&text=$ctx.msg\"\n"
        ));
        match p.send(&sms("Your code is 918273")).await {
            Err(ProviderError::Retryable(m)) => {
                assert!(m.starts_with("gw: cannot connect"), "{m}");
                assert!(m.contains(&format!("http://{addr}/sms")), "{m}");
                assert!(!m.contains("SECRETKEY"), "{m}");
                assert!(!m.contains("api_key"), "{m}");
                assert!(!m.contains("5551234567"), "{m}");
                assert!(!m.contains("918273"), "{m}");
            }
            other => panic!("expected Retryable, got {other:?}"),
        }
    }

    #[test]
    fn debug_hides_credentials() {
        let p = provider(
            "url = \"https://gw.example/x?api_key=SECRETKEY\"\npayload = '{\"t\": {{body}}}'\n\
             headers = { Authorization = \"Bearer HEADERSECRET\" }\n",
        );
        let d = format!("{p:?}");
        assert!(
            !d.contains("SECRETKEY") && !d.contains("HEADERSECRET"),
            "{d}"
        );
        assert!(d.contains("https://gw.example/x"), "{d}");
    }
}
