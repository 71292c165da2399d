//! A GSM/LTE modem on this host, through ModemManager on the system D-Bus:
//! list modems (`ObjectManager.GetManagedObjects`), pick one by config
//! (first usable, IMEI or object path), check it can send (SIM unlocked,
//! registered), then `Modem.Messaging.Create({number, text})` and
//! `Sms.Send()`. The SMS object holds the code, so it is deleted from the
//! modem's storage afterwards (unless `delete_after_send = false`).
//!
//! A new bus connection per message: sends are rare, a local connect
//! costs a millisecond, and nothing goes stale when dbus or ModemManager
//! restarts.

use super::{ProviderError, Receipt, SendFuture, SendMeta, Sms, SmsProvider};
use smsotp_config::provider::{ModemConfig, ModemSelect, Resilience};
use std::collections::HashMap;
use zbus::zvariant::{OwnedObjectPath, OwnedValue, Value};
use zbus::Connection;

pub const MM_SERVICE: &str = "org.freedesktop.ModemManager1";
pub const MM_PATH: &str = "/org/freedesktop/ModemManager1";
pub const MODEM_IFACE: &str = "org.freedesktop.ModemManager1.Modem";
pub const MESSAGING_IFACE: &str = "org.freedesktop.ModemManager1.Modem.Messaging";
pub const SMS_IFACE: &str = "org.freedesktop.ModemManager1.Sms";

/// `MMModemState` values that matter here.
const STATE_FAILED: i32 = -1;
const STATE_LOCKED: i32 = 2;
const STATE_DISABLED: i32 = 3;
const STATE_REGISTERED: i32 = 8;
/// `MMModemLock`: 0 unknown, 1 none; anything higher wants a PIN/PUK.
const LOCK_NONE: u32 = 1;

pub struct Modem {
    name: String,
    select: ModemSelect,
    address: Option<String>,
    delete_after_send: bool,
    resilience: Resilience,
}

impl std::fmt::Debug for Modem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Modem")
            .field("name", &self.name)
            .field("select", &self.select)
            .finish_non_exhaustive()
    }
}

/// What GetManagedObjects says about one modem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ModemInfo {
    pub path: String,
    pub imei: Option<String>,
    pub state: i32,
    pub unlock_required: u32,
    pub failed_reason: u32,
    pub messaging: bool,
}

impl ModemInfo {
    /// `Ok` if the modem can send now; otherwise what is wrong, sorted
    /// into "an admin must act" (permanent) and "may clear up" (retryable).
    fn ready(&self) -> Result<(), ProviderError> {
        let id = self.path.rsplit('/').next().unwrap_or("?");
        if self.state == STATE_LOCKED || self.unlock_required > LOCK_NONE {
            return Err(ProviderError::Permanent(format!(
                "modem {id}: the SIM is locked ({}); unlock it, e.g. `mmcli -i {id} --pin=...`",
                lock_name(self.unlock_required)
            )));
        }
        if self.state == STATE_FAILED {
            return Err(ProviderError::Permanent(format!(
                "modem {id}: failed ({})",
                failed_reason(self.failed_reason)
            )));
        }
        if !self.messaging {
            return Err(ProviderError::Permanent(format!(
                "modem {id}: has no messaging interface (cannot send SMS)"
            )));
        }
        if self.state == STATE_DISABLED {
            return Err(ProviderError::Permanent(format!(
                "modem {id}: is disabled; enable it with `mmcli -m {id} -e`"
            )));
        }
        if self.state < STATE_REGISTERED {
            return Err(ProviderError::Retryable(format!(
                "modem {id}: not registered on a network (state {})",
                state_name(self.state)
            )));
        }
        Ok(())
    }
}

fn state_name(s: i32) -> &'static str {
    match s {
        -1 => "failed",
        0 => "unknown",
        1 => "initializing",
        2 => "locked",
        3 => "disabled",
        4 => "disabling",
        5 => "enabling",
        6 => "enabled",
        7 => "searching",
        8 => "registered",
        9 => "disconnecting",
        10 => "connecting",
        11 => "connected",
        _ => "unrecognised",
    }
}

fn lock_name(l: u32) -> &'static str {
    match l {
        2 => "SIM PIN required",
        3 => "SIM PIN2 required",
        4 => "SIM PUK required",
        5 => "SIM PUK2 required",
        _ => "unlock code required",
    }
}

fn failed_reason(r: u32) -> &'static str {
    match r {
        1 => "unknown reason",
        2 => "no SIM card",
        3 => "SIM error",
        4 => "unknown capabilities",
        5 => "eSIM without profiles",
        _ => "reason not given",
    }
}

type Objects =
    HashMap<OwnedObjectPath, HashMap<zbus::names::OwnedInterfaceName, HashMap<String, OwnedValue>>>;

/// The modems in a GetManagedObjects answer, sorted by path.
pub(crate) fn modems(objects: &Objects) -> Vec<ModemInfo> {
    let mut out: Vec<ModemInfo> = objects
        .iter()
        .filter_map(|(path, ifaces)| {
            let props = ifaces.iter().find(|(n, _)| n.as_str() == MODEM_IFACE)?.1;
            let get_i32 = |k: &str| props.get(k).and_then(|v| i32::try_from(v).ok());
            let get_u32 = |k: &str| props.get(k).and_then(|v| u32::try_from(v).ok());
            Some(ModemInfo {
                path: path.as_str().to_string(),
                imei: props
                    .get("EquipmentIdentifier")
                    .and_then(|v| <&str>::try_from(v).ok())
                    .map(str::to_string),
                state: get_i32("State").unwrap_or(0),
                unlock_required: get_u32("UnlockRequired").unwrap_or(0),
                failed_reason: get_u32("StateFailedReason").unwrap_or(0),
                messaging: ifaces.keys().any(|n| n.as_str() == MESSAGING_IFACE),
            })
        })
        .collect();
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// The configured modem, ready to send, or why not.
pub(crate) fn choose(list: &[ModemInfo], select: &ModemSelect) -> Result<ModemInfo, ProviderError> {
    if list.is_empty() {
        return Err(ProviderError::Permanent(
            "ModemManager lists no modem; is it plugged in? (`mmcli -L`)".into(),
        ));
    }
    let chosen = match select {
        ModemSelect::First => {
            // The first that can send; if none can, the first one's reason.
            if let Some(m) = list.iter().find(|m| m.ready().is_ok()) {
                return Ok(m.clone());
            }
            &list[0]
        }
        ModemSelect::Imei(imei) => list
            .iter()
            .find(|m| m.imei.as_deref() == Some(imei.as_str()))
            .ok_or_else(|| {
                ProviderError::Permanent(format!(
                    "no modem with IMEI {imei} (ModemManager lists {})",
                    list.len()
                ))
            })?,
        ModemSelect::Path(p) => list.iter().find(|m| &m.path == p).ok_or_else(|| {
            ProviderError::Permanent(format!(
                "no modem at {p} (it changes when re-plugged; imei = \"...\" does not)"
            ))
        })?,
    };
    chosen.ready()?;
    Ok(chosen.clone())
}

/// A D-Bus failure, classified. The message text comes from another
/// process; it is kept short and never holds our number or text (we pass
/// them only inside the Create call).
fn dbus_error(step: &str, e: zbus::Error) -> ProviderError {
    let text = match &e {
        zbus::Error::MethodError(name, msg, _) => match msg {
            Some(m) => format!(
                "{}: {}",
                name.as_str(),
                m.chars().take(200).collect::<String>()
            ),
            None => name.as_str().to_string(),
        },
        other => other.to_string().chars().take(200).collect(),
    };
    // The name arrives as a MethodError or, through the fdo proxies, as
    // an `fdo::Error`; both put it at the start of the text.
    let service_missing = text.starts_with("org.freedesktop.DBus.Error.ServiceUnknown")
        || text.starts_with("org.freedesktop.DBus.Error.NameHasNoOwner");
    if service_missing {
        ProviderError::Permanent(format!(
            "{step}: ModemManager is not running (no {MM_SERVICE} on the bus)"
        ))
    } else {
        ProviderError::Retryable(format!("{step}: {text}"))
    }
}

impl Modem {
    pub fn new(cfg: &ModemConfig) -> Self {
        Modem {
            name: cfg.name.clone(),
            select: cfg.select.clone(),
            address: cfg.dbus_address.clone(),
            delete_after_send: cfg.delete_after_send,
            resilience: cfg.resilience,
        }
    }

    async fn connect(&self) -> Result<Connection, ProviderError> {
        let built = match &self.address {
            None => Connection::system().await,
            Some(a) => match zbus::connection::Builder::address(a.as_str()) {
                Ok(b) => b.build().await,
                Err(e) => Err(e),
            },
        };
        built.map_err(|e| {
            ProviderError::Retryable(format!(
                "{}: cannot connect to the D-Bus system bus: {}",
                self.name,
                e.to_string().chars().take(200).collect::<String>()
            ))
        })
    }

    async fn deliver(&self, sms: &Sms) -> Result<Receipt, ProviderError> {
        let conn = self.connect().await?;
        let om = zbus::fdo::ObjectManagerProxy::builder(&conn)
            .destination(MM_SERVICE)
            .and_then(|b| b.path(MM_PATH))
            .map_err(|e| dbus_error("listing modems", e))?
            .build()
            .await
            .map_err(|e| dbus_error("listing modems", e))?;
        let objects = om
            .get_managed_objects()
            .await
            .map_err(|e| dbus_error("listing modems", zbus::Error::from(e)))?;
        let modem = choose(&modems(&objects), &self.select).map_err(|e| self.prefixed(e))?;

        let messaging = zbus::Proxy::new(&conn, MM_SERVICE, modem.path.as_str(), MESSAGING_IFACE)
            .await
            .map_err(|e| dbus_error("messaging", e))?;
        let mut props: HashMap<&str, Value<'_>> = HashMap::new();
        props.insert("number", Value::from(sms.to.e164()));
        props.insert("text", Value::from(sms.body.as_str()));
        let sms_path: OwnedObjectPath = messaging
            .call("Create", &(props,))
            .await
            .map_err(|e| self.prefixed(dbus_error("creating the SMS", e)))?;

        let sent = self.send_sms(&conn, &sms_path).await;
        if self.delete_after_send || sent.is_err() {
            // Best effort: a failed delete must not turn a sent code into
            // a failure, and the modem's storage is ours only in part.
            let deleted: Result<(), _> = messaging.call("Delete", &(&sms_path,)).await;
            if let Err(e) = deleted {
                tracing::debug!(provider = %self.name, error = %dbus_error("deleting the SMS", e), "could not delete the sent SMS from the modem");
            }
        }
        sent.map_err(|e| self.prefixed(e))?;
        Ok(Receipt {
            detail: format!(
                "sent by modem {}",
                modem.path.rsplit('/').next().unwrap_or("?")
            ),
            id: Some(sms_path.as_str().to_string()),
        })
    }

    async fn send_sms(
        &self,
        conn: &Connection,
        path: &OwnedObjectPath,
    ) -> Result<(), ProviderError> {
        let sms = zbus::Proxy::new(conn, MM_SERVICE, path.as_str(), SMS_IFACE)
            .await
            .map_err(|e| dbus_error("sending the SMS", e))?;
        sms.call::<_, _, ()>("Send", &())
            .await
            .map_err(|e| dbus_error("sending the SMS", e))
    }

    fn prefixed(&self, e: ProviderError) -> ProviderError {
        let p = |m: String| format!("{}: {m}", self.name);
        match e {
            ProviderError::Retryable(m) => ProviderError::Retryable(p(m)),
            ProviderError::Permanent(m) => ProviderError::Permanent(p(m)),
            ProviderError::Recipient(m) => ProviderError::Recipient(p(m)),
            ProviderError::Config(m) => ProviderError::Config(p(m)),
            ProviderError::RateLimited {
                message,
                retry_after,
            } => ProviderError::RateLimited {
                message: p(message),
                retry_after,
            },
        }
    }
}

impl SmsProvider for Modem {
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
mod tests {
    use super::*;

    fn info(n: u32, state: i32, lock: u32, imei: &str) -> ModemInfo {
        ModemInfo {
            path: format!("{MM_PATH}/Modem/{n}"),
            imei: Some(imei.into()),
            state,
            unlock_required: lock,
            failed_reason: 0,
            messaging: true,
        }
    }

    #[test]
    fn first_skips_modems_that_cannot_send() {
        let list = [info(0, 7, 1, "111"), info(1, 8, 1, "222")];
        assert_eq!(
            choose(&list, &ModemSelect::First).unwrap().imei.as_deref(),
            Some("222")
        );
        let list = [info(0, 7, 1, "111")];
        assert!(
            matches!(choose(&list, &ModemSelect::First), Err(ProviderError::Retryable(m)) if m.contains("not registered"))
        );
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert!(
            matches!(choose(&[], &ModemSelect::First), Err(ProviderError::Permanent(m)) if m.contains("no modem"))
        );
        let locked = [info(0, 2, 2, "111")];
        assert!(
            matches!(choose(&locked, &ModemSelect::First), Err(ProviderError::Permanent(m)) if m.contains("SIM is locked (SIM PIN required)"))
        );
        let mut failed = info(0, -1, 1, "111");
        failed.failed_reason = 2;
        assert!(
            matches!(choose(&[failed], &ModemSelect::First), Err(ProviderError::Permanent(m)) if m.contains("no SIM card"))
        );
        let list = [info(0, 8, 1, "111")];
        assert!(
            matches!(choose(&list, &ModemSelect::Imei("999".into())), Err(ProviderError::Permanent(m)) if m.contains("no modem with IMEI 999"))
        );
        assert!(choose(&list, &ModemSelect::Path(format!("{MM_PATH}/Modem/0"))).is_ok());
    }
}
