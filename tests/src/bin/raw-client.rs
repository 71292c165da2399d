//! `raw-client SOCKET USER [SERVICE [RHOST]]`: connects to smsotpd with the blocking
//! proto client, sends one `Begin` for USER, and prints one JSON line:
//! `{"uid": N, "response": <Response>}` or `{"uid": N, "error": "...",
//! "absent": bool}`. The permission tests run it as an unprivileged uid.

use smsotp_proto::{BeginRequest, Client, Request};
use std::path::Path;
use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 || args.len() > 5 {
        eprintln!("usage: raw-client SOCKET USER [SERVICE [RHOST]]");
        std::process::exit(2);
    }
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    let service = args.get(3).cloned().unwrap_or_else(|| "raw-client".into());
    let result = Client::connect(Path::new(&args[1]), Duration::from_secs(5), "raw-client")
        .and_then(|mut client| {
            client.call(&Request::Begin(BeginRequest {
                user: args[2].clone(),
                service,
                rhost: args.get(4).cloned(),
                tty: None,
                command: None,
            }))
        });
    let out = match result {
        Ok(response) => serde_json::json!({ "uid": uid, "response": response }),
        Err(e) => serde_json::json!({
            "uid": uid,
            "error": e.to_string(),
            "absent": e.daemon_absent(),
        }),
    };
    println!("{out}");
}
