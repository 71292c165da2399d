//! The custom HTTP provider (the WSO2 "custom SMS provider"): one request
//! per message to an admin-configured URL, with the number and the text
//! put into the URL and/or a JSON or form payload (see `render.rs`),
//! optional Basic, Bearer or API-key header auth, and success judged by
//! the status and, for gateways that always answer 200, by the body.
//!
//! Error text goes to logs and audit records. It never holds the full
//! rendered URL (its query often carries API keys, and it carries the
//! number and the code), nor the number, the message body or a credential.

use super::render::{render_payload, render_url, safe_endpoint};
use super::response::{self, Scrubber, MAX_BODY};
use super::{secret, ProviderError, Receipt, SendFuture, SendMeta, Sms, SmsProvider};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Client, Method, Url};
use smsotp_config::provider::{
    BodyCheck, ContentType, HttpAuth, HttpConfig, HttpMethod, Resilience,
};
use smsotp_config::Template;
use zeroize::Zeroizing;

pub struct HttpProvider {
    name: String,
    /// Built once: it keeps the connection pool and TLS session cache.
    client: Client,
    url: Template,
    method: Method,
    content_type: ContentType,
    payload: Option<Template>,
    /// Static headers plus the auth header, all marked sensitive.
    headers: HeaderMap,
    /// Credential values, so an error body echoing one is scrubbed.
    credentials: Vec<Zeroizing<String>>,
    success_codes: Vec<u16>,
    checks: Vec<Check>,
    resilience: Resilience,
    /// `scheme://host[:port]/path` of the URL, with placeholders shown by
    /// name: the only form of the URL that may appear in errors.
    endpoint: String,
}

enum Check {
    Pointer {
        pointer: String,
        equals: Option<String>,
    },
    Regex(regex::Regex),
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
        // The caller (state.rs) prefixes "provider NAME: " already.
        let bad = ProviderError::Config;
        let client = super::client::build(cfg.resilience.timeout, &cfg.transport)?;

        let mut headers = HeaderMap::with_capacity(cfg.headers.len() + 1);
        let mut credentials = Vec::new();
        for h in &cfg.headers {
            let hname = HeaderName::from_bytes(h.name.as_bytes())
                .map_err(|_| bad(format!("header {:?} has an invalid name", h.name)))?;
            // Never echo the value: it is usually a credential.
            let mut value = HeaderValue::from_str(&h.value)
                .map_err(|_| bad(format!("header {:?} has an invalid value", h.name)))?;
            // Keeps it out of reqwest's Debug output and out of HPACK tables.
            value.set_sensitive(true);
            if h.looks_secret() {
                credentials.push(Zeroizing::new(h.value.clone()));
            }
            // `append`, not `insert`: names differing only in case are two
            // entries in the config and the admin meant both.
            headers.append(hname, value);
        }
        if let Some(auth) = &cfg.auth {
            let secret = secret::read(auth.secret())?;
            let bad_value = || {
                bad(format!(
                    "{}: the secret is not a valid header value",
                    auth.secret().location()
                ))
            };
            let (hname, value) = match auth {
                HttpAuth::Basic { username, .. } => {
                    let (value, encoded) = response::basic_auth(username, &secret);
                    credentials.push(encoded);
                    (AUTHORIZATION, value)
                }
                HttpAuth::Bearer { .. } => (
                    AUTHORIZATION,
                    HeaderValue::from_str(&format!("Bearer {}", *secret))
                        .map_err(|_| bad_value())?,
                ),
                HttpAuth::ApiKey { header, .. } => (
                    HeaderName::from_bytes(header.as_bytes())
                        .map_err(|_| bad(format!("auth header {header:?} is invalid")))?,
                    HeaderValue::from_str(&secret).map_err(|_| bad_value())?,
                ),
            };
            let mut value = value;
            value.set_sensitive(true);
            headers.insert(hname, value);
            credentials.push(secret);
        }

        if let (Some(p), ContentType::Json) = (&cfg.payload, cfg.content_type) {
            // Catch a broken JSON template at startup rather than on every
            // login. The sample values exercise the escaping.
            let sample = render_payload(p, ContentType::Json, "+15550000000", "a \"b\"\n\\c");
            if serde_json::from_str::<serde::de::IgnoredAny>(&sample).is_err() {
                return Err(bad(
                    "payload does not render to valid JSON; write placeholders bare, \
                     e.g. '{\"to\": {{mobile}}, \"text\": {{body}}}'"
                        .to_string(),
                ));
            }
        }
        let checks = cfg
            .body_checks
            .iter()
            .map(|c| match c {
                BodyCheck::JsonPointer { pointer, equals } => Ok(Check::Pointer {
                    pointer: pointer.clone(),
                    equals: equals.clone(),
                }),
                BodyCheck::Regex(r) => regex::RegexBuilder::new(r)
                    // Bounded compile size: the pattern is the admin's, but
                    // a typo should fail clearly, not eat memory.
                    .size_limit(1 << 20)
                    .build()
                    .map(Check::Regex)
                    .map_err(|e| bad(format!("success_body_regex is not a valid regex: {e}"))),
            })
            .collect::<Result<_, _>>()?;

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
            credentials,
            success_codes: cfg.success_codes.clone(),
            checks,
            resilience: cfg.resilience,
            endpoint: safe_endpoint(&cfg.url),
            name,
        })
    }

    fn scrubber(&self, url: &str, sms: &Sms) -> Scrubber {
        let mut s = Scrubber::for_sms(sms);
        s.add(url, "<url>");
        if let Some((_, query)) = url.split_once('?') {
            s.add(query, "<query>");
        }
        for c in &self.credentials {
            s.add(c, "***");
        }
        s
    }

    async fn deliver(&self, sms: &Sms) -> Result<Receipt, ProviderError> {
        let url_text = Zeroizing::new(render_url(&self.url, sms.to.e164(), &sms.body));
        let scrubber = self.scrubber(&url_text, sms);
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
            .map_err(|e| response::transport_error(&self.name, &self.endpoint, e, &scrubber))?;

        let status = response.status().as_u16();
        if self.success_codes.contains(&status) {
            if self.checks.is_empty() {
                // The body is not read: the status is the gateway's answer,
                // and a slow body must not hold up a login that has worked.
                return Ok(Receipt::new(format!("HTTP {status}")));
            }
            let body = response::read_bounded(response, MAX_BODY).await;
            return match self.failed_check(&body) {
                None => Ok(Receipt::new(format!("HTTP {status}, body check passed"))),
                // The gateway took the request but says it did not send.
                // Whether a retry helps is unknown; treat it as temporary
                // so the next provider gets its turn quickly either way.
                Some(why) => Err(ProviderError::Retryable(format!(
                    "HTTP {status} from {} but {why}: {}",
                    self.name,
                    response::snippet(&body, &scrubber)
                ))),
            };
        }

        let headers = response.headers().clone();
        let body = response::read_bounded(response, MAX_BODY).await;
        let mut msg = format!("HTTP {status} from {}", self.name);
        if (300..400).contains(&status) {
            msg.push_str(" (redirects are not followed; set url to the final address)");
        }
        let snippet = response::snippet(&body, &scrubber);
        if !snippet.is_empty() {
            msg.push_str(": ");
            msg.push_str(&snippet);
        }
        Err(response::classify_status(status, &headers, msg))
    }

    /// The first body check that fails, described without the body.
    fn failed_check(&self, body: &[u8]) -> Option<String> {
        let text = String::from_utf8_lossy(body);
        let mut json = None;
        for check in &self.checks {
            match check {
                Check::Regex(re) => {
                    if !re.is_match(&text) {
                        return Some(format!("the body does not match /{}/", re.as_str()));
                    }
                }
                Check::Pointer { pointer, equals } => {
                    let parsed = json.get_or_insert_with(|| {
                        serde_json::from_slice::<serde_json::Value>(body).ok()
                    });
                    let Some(v) = parsed.as_ref() else {
                        return Some("the body is not JSON".into());
                    };
                    let found = v.pointer(pointer);
                    let ok = match (found, equals) {
                        (None, _) => false,
                        (Some(f), Some(want)) => match f {
                            serde_json::Value::String(s) => s == want,
                            other => want.as_str() == other.to_string().as_str(),
                        },
                        (Some(f), None) => {
                            !matches!(f, serde_json::Value::Null | serde_json::Value::Bool(false))
                        }
                    };
                    if !ok {
                        return Some(match equals {
                            Some(want) => format!("{pointer} is not {want:?}"),
                            None => format!("{pointer} is missing, null or false"),
                        });
                    }
                }
            }
        }
        None
    }
}

impl SmsProvider for HttpProvider {
    fn name(&self) -> &str {
        &self.name
    }

    fn send<'a>(&'a self, sms: &'a Sms, _meta: &'a SendMeta) -> SendFuture<'a> {
        Box::pin(self.deliver(sms))
    }

    fn resilience(&self) -> Resilience {
        self.resilience
    }
}

#[cfg(test)]
#[path = "http_tests.rs"]
mod tests;
