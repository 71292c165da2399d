//! `flood-client SOCKET N REQUEST_JSON`: sends the same request on N
//! connections at once (one thread each, all released together) with the
//! blocking proto client and prints one JSON line per connection:
//! `{"response": <Response>}` or `{"error": "..."}`. The hostile-user tests
//! run it as an unprivileged uid, so the daemon sees that uid on every
//! connection.

use smsotp_proto::{Client, Request};
use std::path::PathBuf;
use std::sync::{Arc, Barrier};
use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(socket), Some(Ok(n)), Some(json)) = (
        args.get(1),
        args.get(2).map(|n| n.parse::<usize>()),
        args.get(3),
    ) else {
        eprintln!("usage: flood-client SOCKET N REQUEST_JSON");
        std::process::exit(2);
    };
    let req: Request = serde_json::from_str(json).unwrap_or_else(|e| {
        eprintln!("flood-client: not a request: {e}");
        std::process::exit(2)
    });
    let n = n.min(256);
    let socket = PathBuf::from(socket);
    let start = Arc::new(Barrier::new(n));
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let (socket, req, start) = (socket.clone(), req.clone(), Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                Client::connect(&socket, Duration::from_secs(60), "flood-client")
                    .and_then(|mut c| c.call(&req))
            })
        })
        .collect();
    for t in threads {
        let line = match t.join() {
            Ok(Ok(resp)) => serde_json::json!({ "response": resp }),
            Ok(Err(e)) => serde_json::json!({ "error": e.to_string() }),
            Err(_) => serde_json::json!({ "error": "thread panicked" }),
        };
        println!("{line}");
    }
}
