//! The answers about the daemon's state store: what `smsotpctl store
//! import` copied, and whether the store answers (`status`, `store check`,
//! `doctor`). Apart from message.rs only to keep that file readable.

use crate::message::StoreKind;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableCopy {
    pub table: String,
    pub read: u64,
    pub written: u64,
}

/// What `smsotpctl status` and `doctor` say about the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreHealth {
    pub store: StoreKind,
    /// A read through the daemon's own connections came back in time.
    pub answers: bool,
    /// How long that read took.
    pub latency_micros: Option<u64>,
    /// Why it did not answer (root only: it names the database).
    pub error: Option<String>,
    /// Root only: `schema`, `writable` (PostgreSQL) or `file` (SQLite).
    #[serde(default)]
    pub checks: Vec<HealthCheck>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheck {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

#[cfg(test)]
mod tests {
    use crate::Request;

    #[test]
    fn import_store_takes_only_a_bounded_absolute_path() {
        let req = |p: &str| Request::ImportStore { path: p.into() };
        assert!(req("/var/lib/smsotp/state.db").validate().is_ok());
        assert_eq!(
            req("state.db").validate().unwrap_err().problem,
            "not an absolute path"
        );
        assert!(req(&format!("/{}", "a".repeat(4096))).validate().is_err());
        assert!(req("/x\ny").validate().is_err());
        let json = serde_json::to_string(&Request::StoreCheck).unwrap();
        assert_eq!(json, r#"{"type":"store_check"}"#);
    }
}
