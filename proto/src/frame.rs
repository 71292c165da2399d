//! Length-prefixed JSON frames, blocking I/O. The length is checked before
//! anything is allocated, and decoding never panics on hostile bytes.

use crate::limits::MAX_FRAME;
use serde::{de::DeserializeOwned, Serialize};
use std::io::{self, Read, Write};
use zeroize::Zeroizing;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {0} bytes exceeds the {MAX_FRAME}-byte limit")]
    TooLarge(usize),
    #[error("empty frame")]
    Empty,
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("peer closed the connection")]
    Closed,
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
}

/// Checks a frame header and returns the payload length it announces.
pub fn payload_len(header: [u8; 4]) -> Result<usize, FrameError> {
    let len = u32::from_be_bytes(header) as usize;
    if len == 0 {
        return Err(FrameError::Empty);
    }
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge(len));
    }
    Ok(len)
}

/// Serialises `msg` into a complete frame (header + payload). The buffer is
/// wiped on drop because a `Verify` frame carries a code.
pub fn encode<T: Serialize>(msg: &T) -> Result<Zeroizing<Vec<u8>>, FrameError> {
    let mut buf = Zeroizing::new(vec![0u8; 4]);
    serde_json::to_writer(&mut *buf, msg).map_err(|e| FrameError::Malformed(e.to_string()))?;
    let len = buf.len() - 4;
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge(len));
    }
    buf[..4].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(buf)
}

/// Parses a payload. Error text never quotes the payload (it may hold a code).
pub fn decode<T: DeserializeOwned>(payload: &[u8]) -> Result<T, FrameError> {
    serde_json::from_slice(payload).map_err(|e| {
        FrameError::Malformed(format!(
            "{} at line {} column {}",
            match e.classify() {
                serde_json::error::Category::Io => "I/O error",
                serde_json::error::Category::Syntax => "invalid JSON",
                serde_json::error::Category::Data => "unexpected content",
                serde_json::error::Category::Eof => "truncated JSON",
            },
            e.line(),
            e.column()
        ))
    })
}

pub fn write_frame<W: Write, T: Serialize>(w: &mut W, msg: &T) -> Result<(), FrameError> {
    let buf = encode(msg)?;
    w.write_all(&buf)?;
    w.flush()?;
    Ok(())
}

pub fn read_frame<R: Read, T: DeserializeOwned>(r: &mut R) -> Result<T, FrameError> {
    let mut header = [0u8; 4];
    match r.read_exact(&mut header) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(e) => return Err(e.into()),
    }
    let len = payload_len(header)?;
    let mut payload = Zeroizing::new(vec![0u8; len]);
    r.read_exact(&mut payload)?;
    decode(&payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Request, Response, Secret};
    use std::io::Cursor;

    #[test]
    fn frame_round_trip() {
        let req = Request::Verify {
            code: Secret::new("123456"),
        };
        let buf = encode(&req).unwrap();
        assert_eq!(
            u32::from_be_bytes(buf[..4].try_into().unwrap()) as usize,
            buf.len() - 4
        );
        let back: Request = read_frame(&mut Cursor::new(buf.to_vec())).unwrap();
        assert_eq!(back, req);
    }

    #[test]
    fn oversized_and_empty_headers_are_refused_before_allocating() {
        assert!(matches!(
            payload_len(u32::MAX.to_be_bytes()),
            Err(FrameError::TooLarge(_))
        ));
        assert!(matches!(
            payload_len(((MAX_FRAME + 1) as u32).to_be_bytes()),
            Err(FrameError::TooLarge(_))
        ));
        assert!(matches!(payload_len([0; 4]), Err(FrameError::Empty)));
        assert_eq!(
            payload_len((MAX_FRAME as u32).to_be_bytes()).unwrap(),
            MAX_FRAME
        );
    }

    #[test]
    fn truncated_frames_are_errors() {
        let mut buf = encode(&Request::Resend).unwrap().to_vec();
        buf.truncate(buf.len() - 2);
        assert!(read_frame::<_, Request>(&mut Cursor::new(buf)).is_err());
        assert!(matches!(
            read_frame::<_, Request>(&mut Cursor::new(Vec::new())),
            Err(FrameError::Closed)
        ));
    }

    #[test]
    fn garbage_never_panics_and_error_does_not_echo_payload() {
        let samples: &[&[u8]] = &[
            b"\xff\xfe\x00garbage",
            b"{\"type\":\"verify\",\"code\":\"999111\"",
            b"{\"type\":\"nope\"}",
            b"[]",
            b"null",
            b"{\"type\":\"verify\",\"code\":12}",
        ];
        for s in samples {
            let err = decode::<Request>(s).unwrap_err().to_string();
            assert!(!err.contains("999111"), "{err}");
        }
        // A pseudo-random sweep: every input is refused or parsed, never a panic.
        let mut x: u32 = 0x1234_5678;
        for _ in 0..5000 {
            let mut bytes = vec![0u8; (x % 64) as usize];
            for b in bytes.iter_mut() {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *b = (x % 128) as u8;
            }
            let _ = decode::<Request>(&bytes);
            let _ = decode::<Response>(&bytes);
        }
    }
}
