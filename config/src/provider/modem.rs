//! `type = "modem"`: a GSM/LTE modem on this host, driven through
//! ModemManager on the system D-Bus.

use super::common::{RawResilience, Resilience};
use super::provider_name;
use crate::error::Invalid;
use serde::Deserialize;

#[derive(Debug, Clone)]
pub struct ModemConfig {
    pub name: String,
    pub select: ModemSelect,
    /// D-Bus address; `None` is the system bus. For tests and unusual
    /// setups (`unix:path=/run/dbus/system_bus_socket`).
    pub dbus_address: Option<String>,
    /// Delete the SMS from the modem's storage once sent: it holds a code.
    pub delete_after_send: bool,
    pub resilience: Resilience,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModemSelect {
    /// The first modem ModemManager lists that is ready to send.
    First,
    /// The modem whose `EquipmentIdentifier` is this IMEI.
    Imei(String),
    /// `/org/freedesktop/ModemManager1/Modem/N` (changes when a modem
    /// is re-plugged; the IMEI does not).
    Path(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModem {
    pub name: Option<String>,
    pub imei: Option<String>,
    pub modem_path: Option<String>,
    pub dbus_address: Option<String>,
    pub delete_after_send: Option<bool>,
    pub timeout_seconds: Option<i64>,
    pub retries: Option<i64>,
    pub retry_backoff_ms: Option<i64>,
    pub breaker_failures: Option<i64>,
    pub breaker_cooldown_seconds: Option<i64>,
}

pub(crate) fn validate(i: usize, raw: RawModem) -> Result<ModemConfig, Invalid> {
    let key = |k: &str| format!("provider[{i}].{k}");
    let select = match (raw.imei, raw.modem_path) {
        (Some(_), Some(_)) => {
            return Err(Invalid::new(
                key("modem_path"),
                "set imei or modem_path, not both",
            ))
        }
        (Some(imei), None) => {
            if !(14..=17).contains(&imei.len()) || !imei.bytes().all(|b| b.is_ascii_digit()) {
                return Err(Invalid::new(key("imei"), "must be 14 to 17 digits"));
            }
            ModemSelect::Imei(imei)
        }
        (None, Some(p)) => {
            let ok = p.starts_with("/org/freedesktop/ModemManager1/Modem/")
                && p.len() <= 255
                && p.split('/').skip(1).all(|seg| {
                    !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                });
            if !ok {
                return Err(Invalid::new(
                    key("modem_path"),
                    "must be a ModemManager object path, e.g. /org/freedesktop/ModemManager1/Modem/0",
                ));
            }
            ModemSelect::Path(p)
        }
        (None, None) => ModemSelect::First,
    };
    let dbus_address = match raw.dbus_address {
        Some(a) if a.is_empty() || a.len() > 1024 || !a.contains(':') => {
            return Err(Invalid::new(
                key("dbus_address"),
                "must be a D-Bus address such as unix:path=/run/dbus/system_bus_socket",
            ))
        }
        a => a,
    };
    Ok(ModemConfig {
        name: provider_name(&key("name"), raw.name, "modem")?,
        select,
        dbus_address,
        delete_after_send: raw.delete_after_send.unwrap_or(true),
        // A modem needs longer than an HTTP API: registration checks plus
        // the radio round trip.
        resilience: RawResilience {
            timeout_seconds: raw.timeout_seconds,
            retries: raw.retries,
            retry_backoff_ms: raw.retry_backoff_ms,
            breaker_failures: raw.breaker_failures,
            breaker_cooldown_seconds: raw.breaker_cooldown_seconds,
        }
        .validate(key, 12)?,
    })
}
