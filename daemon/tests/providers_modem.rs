//! The modem provider against a fake `org.freedesktop.ModemManager1` on a
//! private dbus-daemon (TESTING.md's recipe): modems listed through
//! ObjectManager, `Messaging.Create` returning an SMS object, `Sms.Send`,
//! the SMS deleted afterwards; and the clear errors for no ModemManager,
//! no modem, a locked SIM and a modem not registered on a network.

mod providers_support;

use providers_support::*;
use smsotpd::providers::{AttemptOutcome, ProviderError, SendMeta};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use zbus::object_server::ObjectServer;
use zbus::zvariant::{OwnedObjectPath, OwnedValue};

const MM: &str = "/org/freedesktop/ModemManager1";

/// A dbus-daemon on a socket in a temp dir; killed (by its own pid) on drop.
struct Bus {
    child: Child,
    address: String,
    _dir: tempfile::TempDir,
}

impl Bus {
    fn start() -> Bus {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("bus.sock");
        let conf = dir.path().join("bus.conf");
        std::fs::write(
            &conf,
            format!(
                "<busconfig><type>system</type><listen>unix:path={}</listen>\
                 <auth>EXTERNAL</auth><policy context=\"default\"><allow user=\"*\"/>\
                 <allow own=\"*\"/><allow send_destination=\"*\"/><allow receive_sender=\"*\"/>\
                 <allow send_type=\"method_call\"/><allow send_type=\"signal\"/></policy></busconfig>",
                sock.display()
            ),
        )
        .unwrap();
        let mut child = Command::new("dbus-daemon")
            .arg("--nofork")
            .arg(format!("--config-file={}", conf.display()))
            .arg("--print-address=1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon must be installed (Debian package dbus-daemon)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with("unix:"), "dbus-daemon said {line:?}");
        Bus {
            child,
            address: line.trim().to_string(),
            _dir: dir,
        }
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Default)]
struct World {
    created: Vec<(String, String, String)>,
    sent: Vec<String>,
    deleted: Vec<String>,
    send_fails: bool,
}

type Shared = Arc<Mutex<World>>;

struct FakeModem {
    state: i32,
    unlock: u32,
    imei: String,
}

#[zbus::interface(name = "org.freedesktop.ModemManager1.Modem")]
impl FakeModem {
    #[zbus(property)]
    fn state(&self) -> i32 {
        self.state
    }
    #[zbus(property)]
    fn unlock_required(&self) -> u32 {
        self.unlock
    }
    #[zbus(property)]
    fn equipment_identifier(&self) -> String {
        self.imei.clone()
    }
    #[zbus(property)]
    fn state_failed_reason(&self) -> u32 {
        0
    }
}

struct FakeMessaging {
    world: Shared,
}

#[zbus::interface(name = "org.freedesktop.ModemManager1.Modem.Messaging")]
impl FakeMessaging {
    async fn create(
        &self,
        properties: HashMap<String, OwnedValue>,
        #[zbus(object_server)] server: &ObjectServer,
    ) -> zbus::fdo::Result<OwnedObjectPath> {
        let get = |k: &str| {
            properties
                .get(k)
                .and_then(|v| <&str>::try_from(v).ok())
                .map(str::to_string)
                .ok_or_else(|| zbus::fdo::Error::InvalidArgs(format!("missing {k}")))
        };
        let (number, text) = (get("number")?, get("text")?);
        let path = {
            let mut w = self.world.lock().unwrap();
            let p = format!("{MM}/SMS/{}", w.created.len());
            w.created.push((p.clone(), number, text));
            p
        };
        server
            .at(
                path.as_str(),
                FakeSms {
                    world: self.world.clone(),
                    path: path.clone(),
                },
            )
            .await?;
        Ok(OwnedObjectPath::try_from(path).unwrap())
    }

    async fn delete(
        &self,
        path: OwnedObjectPath,
        #[zbus(object_server)] server: &ObjectServer,
    ) -> zbus::fdo::Result<()> {
        server.remove::<FakeSms, _>(path.as_str()).await?;
        self.world
            .lock()
            .unwrap()
            .deleted
            .push(path.as_str().to_string());
        Ok(())
    }
}

struct FakeSms {
    world: Shared,
    path: String,
}

#[zbus::interface(name = "org.freedesktop.ModemManager1.Sms")]
impl FakeSms {
    async fn send(&self) -> zbus::fdo::Result<()> {
        let mut w = self.world.lock().unwrap();
        if w.send_fails {
            return Err(zbus::fdo::Error::Failed(
                "Couldn't send SMS: network timeout".into(),
            ));
        }
        w.sent.push(self.path.clone());
        Ok(())
    }
}

/// Serves ModemManager on `bus` with `modems` (state, unlock, imei).
async fn serve_mm(bus: &Bus, modems: &[(i32, u32, &str)], world: &Shared) -> zbus::Connection {
    let mut b = zbus::connection::Builder::address(bus.address.as_str())
        .unwrap()
        .name("org.freedesktop.ModemManager1")
        .unwrap()
        .serve_at(MM, zbus::fdo::ObjectManager)
        .unwrap();
    for (i, (state, unlock, imei)) in modems.iter().enumerate() {
        let path = OwnedObjectPath::try_from(format!("{MM}/Modem/{i}")).unwrap();
        b = b
            .serve_at(
                path.clone(),
                FakeModem {
                    state: *state,
                    unlock: *unlock,
                    imei: imei.to_string(),
                },
            )
            .unwrap()
            .serve_at(
                path,
                FakeMessaging {
                    world: world.clone(),
                },
            )
            .unwrap();
    }
    b.build().await.unwrap()
}

fn chain_for(bus: &Bus, extra: &str) -> smsotpd::providers::Chain {
    Setup::new().chain(&format!(
        "[[provider]]\ntype = \"modem\"\ndbus_address = \"{}\"\nretries = 0\ntimeout_seconds = 5\n{extra}\n",
        bus.address
    ))
}

async fn only_error(chain: &smsotpd::providers::Chain) -> ProviderError {
    let e = chain
        .send_with(&sms(), &SendMeta::default())
        .await
        .unwrap_err();
    match &e.attempts[0].outcome {
        AttemptOutcome::Failed(err) => err.clone(),
        other => panic!("{other:?}"),
    }
}

const REGISTERED: i32 = 8;
const SEARCHING: i32 = 7;
const LOCKED: i32 = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_through_the_first_ready_modem_and_deletes_the_sms() {
    let bus = Bus::start();
    let world = Shared::default();
    let _mm = serve_mm(
        &bus,
        &[
            (SEARCHING, 1, "350000000000001"),
            (REGISTERED, 1, "350000000000002"),
        ],
        &world,
    )
    .await;
    let chain = chain_for(&bus, "");
    let d = chain.send_with(&sms(), &SendMeta::default()).await.unwrap();
    assert_eq!(d.provider, "modem");
    assert_eq!(d.receipt.detail, "sent by modem 1");
    let w = world.lock().unwrap();
    assert_eq!(
        w.created,
        vec![(format!("{MM}/SMS/0"), NUM.to_string(), BODY.to_string())]
    );
    assert_eq!(w.sent, vec![format!("{MM}/SMS/0")]);
    assert_eq!(
        w.deleted,
        vec![format!("{MM}/SMS/0")],
        "the code does not stay in modem storage"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selection_by_imei_and_path() {
    let bus = Bus::start();
    let world = Shared::default();
    let _mm = serve_mm(
        &bus,
        &[
            (REGISTERED, 1, "350000000000001"),
            (REGISTERED, 1, "350000000000002"),
        ],
        &world,
    )
    .await;
    let d = chain_for(&bus, "imei = \"350000000000002\"")
        .send(&sms())
        .await
        .unwrap();
    assert_eq!(d.1.detail, "sent by modem 1");
    let d = chain_for(
        &bus,
        &format!("modem_path = \"{MM}/Modem/0\"\ndelete_after_send = false"),
    )
    .send(&sms())
    .await
    .unwrap();
    assert_eq!(d.1.detail, "sent by modem 0");
    assert_eq!(
        world.lock().unwrap().deleted.len(),
        1,
        "delete_after_send = false keeps it"
    );
    let e = only_error(&chain_for(&bus, "imei = \"999999999999999\"")).await;
    assert!(
        matches!(e, ProviderError::Permanent(m) if m == "modem: no modem with IMEI 999999999999999 (ModemManager lists 2)")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locked_sim_and_no_network_are_clear() {
    let bus = Bus::start();
    let world = Shared::default();
    let _mm = serve_mm(
        &bus,
        &[
            (LOCKED, 2, "350000000000001"),
            (SEARCHING, 1, "350000000000002"),
        ],
        &world,
    )
    .await;
    let e = only_error(&chain_for(&bus, "imei = \"350000000000001\"")).await;
    assert!(
        matches!(&e, ProviderError::Permanent(m) if m.contains("modem 0: the SIM is locked (SIM PIN required)")),
        "{e}"
    );
    let e = only_error(&chain_for(&bus, "imei = \"350000000000002\"")).await;
    assert!(
        matches!(&e, ProviderError::Retryable(m) if m.contains("modem 1: not registered on a network (state searching)")),
        "{e}"
    );
    assert!(
        world.lock().unwrap().created.is_empty(),
        "nothing created on a modem that cannot send"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_modem_and_no_modemmanager() {
    let bus = Bus::start();
    // Nobody owns org.freedesktop.ModemManager1 yet.
    let e = only_error(&chain_for(&bus, "")).await;
    assert!(
        matches!(&e, ProviderError::Permanent(m) if m.contains("ModemManager is not running")),
        "{e}"
    );
    let world = Shared::default();
    let _mm = serve_mm(&bus, &[], &world).await;
    let e = only_error(&chain_for(&bus, "")).await;
    assert!(
        matches!(&e, ProviderError::Permanent(m) if m.contains("lists no modem")),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_send_is_temporary_and_cleans_up() {
    let bus = Bus::start();
    let world = Shared::default();
    world.lock().unwrap().send_fails = true;
    let _mm = serve_mm(&bus, &[(REGISTERED, 1, "350000000000001")], &world).await;
    let e = only_error(&chain_for(&bus, "")).await;
    assert!(
        matches!(&e, ProviderError::Retryable(m) if m.contains("sending the SMS: org.freedesktop.DBus.Error.Failed: Couldn't send SMS")),
        "{e}"
    );
    assert!(!e.to_string().contains("918273"));
    let w = world.lock().unwrap();
    assert_eq!(
        w.deleted,
        vec![format!("{MM}/SMS/0")],
        "the unsent SMS with the code is deleted"
    );
}

#[tokio::test]
async fn an_unreachable_bus_is_temporary() {
    let e = only_error(&Setup::new().chain(
        "[[provider]]\ntype = \"modem\"\ndbus_address = \"unix:path=/nonexistent/bus.sock\"\nretries = 0\n",
    ))
    .await;
    assert!(
        matches!(&e, ProviderError::Retryable(m) if m.contains("cannot connect to the D-Bus system bus")),
        "{e}"
    );
}
