//! Frame Streams (fstrm), the transport of dnstap, as a bidirectional writer.
//!
//! A data frame is a 32-bit big-endian length and that many bytes. A control frame starts with
//! a zero length (the escape), then its own length, a 32-bit type and fields (here only
//! CONTENT_TYPE: type 1, length, bytes). The bidirectional handshake, as libfstrm and every
//! dnstap collector (fstrm_capture, Vector, go-dnscollector, dnsdist) speak it:
//!
//! ```text
//! writer: READY(content type)   reader: ACCEPT(content type)
//! writer: START(content type)   ... data frames ...
//! writer: STOP                  reader: FINISH
//! ```

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Control frame types.
pub const ACCEPT: u32 = 1;
pub const START: u32 = 2;
pub const STOP: u32 = 3;
pub const READY: u32 = 4;
pub const FINISH: u32 = 5;
/// Control field: content type.
const FIELD_CONTENT_TYPE: u32 = 1;
/// The largest control frame we accept from a reader (libfstrm's limit is 512 bytes).
const MAX_CONTROL: u32 = 512;

/// Appends a control frame of `kind`, with `content_type` when given.
pub fn control(buf: &mut Vec<u8>, kind: u32, content_type: Option<&[u8]>) {
    let body = 4 + content_type.map_or(0, |c| 8 + c.len());
    buf.extend_from_slice(&0u32.to_be_bytes());
    buf.extend_from_slice(&(body as u32).to_be_bytes());
    buf.extend_from_slice(&kind.to_be_bytes());
    if let Some(c) = content_type {
        buf.extend_from_slice(&FIELD_CONTENT_TYPE.to_be_bytes());
        buf.extend_from_slice(&(c.len() as u32).to_be_bytes());
        buf.extend_from_slice(c);
    }
}

/// Appends a data frame holding `payload`.
pub fn data(buf: &mut Vec<u8>, payload: &[u8]) {
    buf.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    buf.extend_from_slice(payload);
}

/// A control frame as read: its type and its content types.
#[derive(Debug, PartialEq, Eq)]
pub struct Control {
    pub kind: u32,
    pub content_types: Vec<Vec<u8>>,
}

/// Reads one control frame (a reader never sends data frames to a writer).
pub async fn read_control<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<Control> {
    let escape = r.read_u32().await?;
    if escape != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "expected a control frame, got a data frame",
        ));
    }
    let len = r.read_u32().await?;
    if !(4..=MAX_CONTROL).contains(&len) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("control frame of {len} bytes"),
        ));
    }
    let mut body = vec![0; len as usize];
    r.read_exact(&mut body).await?;
    parse_control(&body)
}

/// Parses a control frame's body (type and fields).
pub fn parse_control(body: &[u8]) -> io::Result<Control> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
    let u32_at = |at: usize| -> io::Result<u32> {
        body.get(at..at + 4)
            .map(|b| u32::from_be_bytes(b.try_into().expect("4 bytes")))
            .ok_or_else(|| bad("control frame cut short"))
    };
    let kind = u32_at(0)?;
    let mut content_types = Vec::new();
    let mut at = 4;
    while at < body.len() {
        let field = u32_at(at)?;
        let len = u32_at(at + 4)? as usize;
        let value = body
            .get(at + 8..at + 8 + len)
            .ok_or_else(|| bad("control field longer than its frame"))?;
        if field == FIELD_CONTENT_TYPE {
            content_types.push(value.to_vec());
        }
        at += 8 + len;
    }
    Ok(Control {
        kind,
        content_types,
    })
}

/// The writer's half of the handshake: READY, ACCEPT (naming our content type), START.
pub async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    content_type: &[u8],
) -> io::Result<()> {
    let mut buf = Vec::new();
    control(&mut buf, READY, Some(content_type));
    s.write_all(&buf).await?;
    let accept = read_control(s).await?;
    if accept.kind != ACCEPT {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("expected ACCEPT, got control frame type {}", accept.kind),
        ));
    }
    if !accept.content_types.iter().any(|c| c == content_type) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "the collector does not accept {}",
                String::from_utf8_lossy(content_type)
            ),
        ));
    }
    buf.clear();
    control(&mut buf, START, Some(content_type));
    s.write_all(&buf).await?;
    s.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_frames_round_trip() {
        let mut b = Vec::new();
        control(&mut b, READY, Some(b"protobuf:dnstap.Dnstap"));
        assert_eq!(&b[..4], &[0; 4]);
        let len = u32::from_be_bytes(b[4..8].try_into().unwrap()) as usize;
        assert_eq!(len, b.len() - 8);
        let c = parse_control(&b[8..]).unwrap();
        assert_eq!(c.kind, READY);
        assert_eq!(c.content_types, [b"protobuf:dnstap.Dnstap".to_vec()]);
        b.clear();
        control(&mut b, STOP, None);
        assert_eq!(b, [0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 3]);
    }

    #[test]
    fn bad_control_frames_are_errors_not_panics() {
        for body in [
            &[][..],
            &[0, 0, 0, 1, 0, 0][..],
            &[0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 9][..],
        ] {
            assert!(parse_control(body).is_err(), "{body:?}");
        }
    }

    #[tokio::test]
    async fn handshake_wants_accept_with_our_content_type() {
        let (mut w, mut r) = tokio::io::duplex(1024);
        let reader = tokio::spawn(async move {
            let ready = read_control(&mut r).await.unwrap();
            assert_eq!(ready.kind, READY);
            let mut b = Vec::new();
            control(&mut b, ACCEPT, Some(b"protobuf:other"));
            r.write_all(&b).await.unwrap();
        });
        let err = handshake(&mut w, b"protobuf:dnstap.Dnstap")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("does not accept"), "{err}");
        reader.await.unwrap();
    }
}
