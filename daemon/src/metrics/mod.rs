//! Prometheus metrics: what an operator watches on a dashboard. Counted
//! always (a few atomics), exposed only when `[metrics]` says where
//! ([`http`]: a loopback listener, [`textfile`]: node_exporter's textfile
//! collector).
//!
//! Every label value comes from a fixed small set (event names written in
//! the code, provider names from the config, outcome kinds): never a user
//! name, a number, a code or an error text, so neither the cardinality nor
//! what a scrape shows depends on who logs in.

pub mod http;
pub mod textfile;

use crate::providers::{Attempt, AttemptOutcome, ProviderError};
use crate::rules::send::Refusal;
use crate::state::State;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::{Arc, LazyLock};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    event: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SendLabels {
    provider: String,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderLabels {
    provider: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VerifyLabels {
    method: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

/// Seconds a provider took to answer one try: from a loopback relay
/// (milliseconds) to a gateway at its timeout.
const LATENCY_BUCKETS: [f64; 10] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0];

struct Metrics {
    registry: Registry,
    events: Family<EventLabels, Counter>,
    sends: Family<SendLabels, Counter>,
    verifications: Family<VerifyLabels, Counter>,
    lockouts: Counter,
    budget_refusals: Family<KindLabels, Counter>,
    latency: Family<ProviderLabels, Histogram, fn() -> Histogram>,
    breaker_open: Family<ProviderLabels, Gauge>,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let mut registry = Registry::with_prefix("smsotp");
    let m = Metrics {
        events: Family::default(),
        sends: Family::default(),
        verifications: Family::default(),
        lockouts: Counter::default(),
        budget_refusals: Family::default(),
        latency: Family::new_with_constructor(|| Histogram::new(LATENCY_BUCKETS)),
        breaker_open: Family::default(),
        registry: Registry::default(),
    };
    registry.register(
        "events",
        "Audit events of the login flow, by event name",
        m.events.clone(),
    );
    registry.register(
        "sends",
        "Tries at each SMS provider, by provider and result",
        m.sends.clone(),
    );
    registry.register(
        "verifications",
        "Codes checked, by method (sms, backup) and result",
        m.verifications.clone(),
    );
    registry.register(
        "lockouts",
        "Logins refused or cut short by a lockout",
        m.lockouts.clone(),
    );
    registry.register(
        "budget_refusals",
        "Sends refused by a send budget or the country allowlist, by kind",
        m.budget_refusals.clone(),
    );
    registry.register_with_unit(
        "provider_latency",
        "Time of one try at a provider",
        prometheus_client::registry::Unit::Seconds,
        m.latency.clone(),
    );
    registry.register(
        "breaker_open",
        "1 while the provider's circuit breaker is open",
        m.breaker_open.clone(),
    );
    Metrics { registry, ..m }
});

/// One audit event of the login flow (called by the `audit!` macro).
pub fn event(name: &'static str) {
    let m = &*METRICS;
    m.events.get_or_create(&EventLabels { event: name }).inc();
    let verification = match name {
        "verified" => Some(("sms", "ok")),
        "backup_code_used" => Some(("backup", "ok")),
        "expired" => Some(("sms", "expired")),
        "backup_locked" => Some(("backup", "locked")),
        _ => None,
    };
    if let Some((method, result)) = verification {
        verified(method, result);
    }
    if name == "locked" {
        m.lockouts.inc();
    }
}

/// A wrong guess, or the one that used the challenge's last try.
pub fn guess_failed(backup: bool, exhausted: bool) {
    let method = if backup { "backup" } else { "sms" };
    verified(method, if exhausted { "exhausted" } else { "wrong" });
}

fn verified(method: &'static str, result: &'static str) {
    METRICS
        .verifications
        .get_or_create(&VerifyLabels { method, result })
        .inc();
}

/// A send or resend refused; `reason` is the sentence the user is shown,
/// mapped back to the fixed kind it came from.
pub fn budget_refused(reason: &str) {
    let kinds = [
        (Refusal::User, "user"),
        (Refusal::Rhost, "rhost"),
        (Refusal::Global, "global"),
        (Refusal::Resends, "resends"),
        (Refusal::Cooldown, "cooldown"),
    ];
    let kind = kinds
        .iter()
        .find(|(r, _)| r.reason() == reason)
        .map(|(_, k)| *k)
        .unwrap_or(match reason {
            // login/send.rs and stepup.rs refuse with this sentence.
            "codes cannot be sent to this country" => "country",
            _ => "other",
        });
    METRICS
        .budget_refusals
        .get_or_create(&KindLabels { kind })
        .inc();
}

/// One finished try at a provider, with its result and time.
pub fn attempt(a: &Attempt) {
    let m = &*METRICS;
    let result = match &a.outcome {
        AttemptOutcome::Sent(_) => "sent",
        AttemptOutcome::Skipped { .. } => "skipped",
        AttemptOutcome::Failed(ProviderError::Retryable(_)) => "retryable",
        AttemptOutcome::Failed(ProviderError::RateLimited { .. }) => "rate_limited",
        AttemptOutcome::Failed(ProviderError::Permanent(_)) => "permanent",
        AttemptOutcome::Failed(ProviderError::Recipient(_)) => "recipient",
        AttemptOutcome::Failed(ProviderError::Config(_)) => "config",
    };
    m.sends
        .get_or_create(&SendLabels {
            provider: a.provider.clone(),
            result,
        })
        .inc();
    if !matches!(a.outcome, AttemptOutcome::Skipped { .. }) {
        m.latency
            .get_or_create(&ProviderLabels {
                provider: a.provider.clone(),
            })
            .observe(a.elapsed.as_secs_f64());
    }
}

/// The exposition (OpenMetrics text, `# EOF` last), the breaker gauges
/// read from the providers configured now.
pub fn render(state: &Arc<State>) -> String {
    // One render at a time: the endpoint and the textfile must not see
    // each other's half-rebuilt breaker gauges.
    static RENDERING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = RENDERING.lock().unwrap_or_else(|p| p.into_inner());
    let m = &*METRICS;
    let rt = state.runtime();
    // A reload may have renamed or removed providers: their gauges go.
    m.breaker_open.clear();
    let open = rt.chain.open_breakers();
    for name in rt.chain.names() {
        m.breaker_open
            .get_or_create(&ProviderLabels {
                provider: name.to_string(),
            })
            .set(i64::from(open.contains(&name)));
    }
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &m.registry);
    out
}

/// Starts what `[metrics]` asks for. A listener that cannot bind is logged
/// and left out: a metrics port taken by something else must not stop
/// logins.
pub async fn start(state: &Arc<State>) {
    let cfg = state.runtime().config.metrics.clone();
    if let Some(addr) = cfg.listen {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => {
                tracing::info!(listen = %addr, "serving metrics");
                tokio::spawn(http::serve(l, Arc::clone(state)));
            }
            Err(e) => {
                tracing::error!(listen = %addr, error = %e, "cannot listen for metrics scrapes")
            }
        }
    }
    if let Some(path) = cfg.textfile {
        tokio::spawn(textfile::run(
            path,
            cfg.textfile_interval,
            Arc::clone(state),
        ));
    }
}
