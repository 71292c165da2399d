//! The custom HTTP provider against a loopback server: the exact request,
//! auth, body checks, and how each kind of failure is classified.

use super::super::response::MAX_SNIPPET;
use super::*;
use smsotp_config::{Mobile, ProviderConfig};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};
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

fn sms(body: &str) -> Sms {
    Sms {
        to: Mobile::parse(NUM).unwrap(),
        body: Zeroizing::new(body.to_string()),
    }
}

async fn send(p: &HttpProvider, sms: &Sms) -> Result<Receipt, ProviderError> {
    p.send(sms, &SendMeta::default()).await
}

#[test]
fn invalid_json_payload_is_refused_at_startup() {
    let cfg = config(
        "url = \"http://127.0.0.1:9/x\"\npayload = '{\"to\": {{mobile}}, \"text\": {{body}}'\n",
    );
    match HttpProvider::new(&cfg) {
        Err(ProviderError::Config(m)) => assert!(m.contains("valid JSON"), "{m}"),
        other => panic!("expected Config, got {:?}", other.map(|_| ())),
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
    let r = send(&p, &sms(body)).await.unwrap();
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
    send(&p, &sms(body)).await.unwrap();
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
    assert_eq!(send(&p, &sms(body)).await.unwrap().detail, "HTTP 200");
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
    send(&p, &sms("hello")).await.unwrap();
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
    let r = send(&p, &sms("Your code is 918273")).await;
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
        Err(ProviderError::RateLimited { message, retry_after: None }) if message == "HTTP 429 from gw"
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
        send(&p, &sms("hello")).await,
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
    match send(&p, &sms("Your code is 918273")).await {
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
    let r = send(&p, &sms("Your code is 918273")).await;
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
    match send(&p, &sms("Your code is 918273")).await {
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
