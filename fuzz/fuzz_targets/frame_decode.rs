//! The daemon's and the module's view of bytes from the socket: frames
//! (`read_frame`, header checked before allocating) and payloads (`decode`)
//! into `Request` and `Response`, then validation and a round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smsotp_proto::frame::{decode, encode, read_frame, FrameError};
use smsotp_proto::{Request, Response};
use std::io::Cursor;

fn check_error(e: &FrameError) {
    // Error text never quotes the payload (it may hold a code): it is one
    // of a few fixed shapes with numbers only.
    let msg = e.to_string();
    assert!(msg.len() < 120, "error text too long: {msg}");
    assert!(
        !msg.contains('"') && !msg.contains('{'),
        "error text quotes input: {msg}"
    );
}

fn request(req: Request) {
    let _ = req.validate();
    if let Ok(buf) = encode(&req) {
        let back: Request = decode(&buf[4..]).expect("re-decode an encoded request");
        assert_eq!(back, req, "request round trip");
    }
}

fn response(resp: Response) {
    if let Ok(buf) = encode(&resp) {
        let back: Response = decode(&buf[4..]).expect("re-decode an encoded response");
        assert_eq!(back, resp, "response round trip");
    }
}

fuzz_target!(|data: &[u8]| {
    // A stream of frames, as the daemon reads them (bounded: at most 8).
    let mut cur = Cursor::new(data);
    for _ in 0..8 {
        match read_frame::<_, Request>(&mut cur) {
            Ok(req) => request(req),
            Err(e) => {
                check_error(&e);
                break;
            }
        }
    }
    match read_frame::<_, Response>(&mut Cursor::new(data)) {
        Ok(resp) => response(resp),
        Err(e) => check_error(&e),
    }
    // The payload alone.
    match decode::<Request>(data) {
        Ok(req) => request(req),
        Err(e) => check_error(&e),
    }
    match decode::<Response>(data) {
        Ok(resp) => response(resp),
        Err(e) => check_error(&e),
    }
});
