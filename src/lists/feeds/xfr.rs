//! The zone transfer client: one AXFR (RFC 5936) or IXFR (RFC 1995) over TCP, TSIG-signed
//! (RFC 8945), every signed message of the answer verified.
//!
//! Our own small exchange (two-byte length frames, read until the closing SOA) rather than
//! hickory's transfer stream, which loses messages of large AXFRs (hickory-dns#2049); hickory
//! gives the message codec and the HMACs.

use std::{
    net::SocketAddr,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use hickory_proto::{
    op::{Message, MessageType, OpCode, Query, ResponseCode},
    rr::{
        DNSClass, Name, RData, Record, RecordType, TSigner,
        rdata::{SOA, tsig::signed_bitmessage_to_buf},
    },
};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use super::config::TsigKey;

/// Unsigned messages allowed between two signed ones (RFC 8945 §5.3.1 says at most 99).
const MAX_UNSIGNED_RUN: usize = 99;
/// Allowed difference between the primary's clock and ours, seconds.
const FUDGE: u16 = 300;

/// Why a transfer gave nothing usable. The previous zone keeps serving.
#[derive(Debug, thiserror::Error)]
pub enum XfrError {
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    #[error("connection broke off: {0}")]
    Io(std::io::Error),
    #[error("no data from the primary for {0:?}")]
    Timeout(Duration),
    #[error("the primary closed the connection before the end of the zone (truncated transfer)")]
    Truncated,
    #[error("the primary answered {0}")]
    Rcode(ResponseCode),
    #[error("bad TSIG: {0}")]
    Tsig(String),
    #[error("malformed answer: {0}")]
    Malformed(String),
}

impl XfrError {
    /// A short reason for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            XfrError::Connect(_) => "connect",
            XfrError::Io(_) | XfrError::Truncated => "truncated",
            XfrError::Timeout(_) => "timeout",
            XfrError::Rcode(_) => "rcode",
            XfrError::Tsig(_) => "tsig",
            XfrError::Malformed(_) => "malformed",
        }
    }
}

/// The SOA fields we use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Soa {
    pub serial: u32,
    pub refresh: u32,
    pub retry: u32,
    pub expire: u32,
    /// The record, in presentation form (written at the top of the zone file).
    pub text: String,
}

impl Soa {
    fn of(record: &Record, soa: &SOA) -> Soa {
        Soa {
            serial: soa.serial,
            refresh: soa.refresh.max(0) as u32,
            retry: soa.retry.max(0) as u32,
            expire: soa.expire.max(0) as u32,
            text: line(record),
        }
    }

    /// Reads the fields back from [`Soa::text`] (a zone file's SOA line).
    pub fn parse(text: &str) -> Option<Soa> {
        let t: Vec<&str> = text.split_whitespace().collect();
        let at = t.iter().position(|w| w.eq_ignore_ascii_case("soa"))?;
        let n = |i: usize| t.get(at + i).and_then(|w| w.parse::<u32>().ok());
        Some(Soa {
            serial: n(3)?,
            refresh: n(4)?,
            retry: n(5)?,
            expire: n(6)?,
            text: text.to_string(),
        })
    }
}

/// A record as one line of the zone file (owner, type, data), lowercase: the form records are
/// kept, compared and deleted in. The TTL is left out: RPZ ignores it, and an IXFR deletion
/// names a record by owner, type and data.
pub fn line(r: &Record) -> String {
    let mut s = format!("{} {} {}", r.name, r.record_type(), r.data);
    s.make_ascii_lowercase();
    s
}

/// What a transfer brought.
#[derive(Debug)]
pub enum Transfer {
    /// The primary has the serial we have (or an older one): nothing to apply.
    UpToDate(Soa),
    /// A whole zone: its SOA and every other record.
    Full { soa: Soa, records: Vec<String> },
    /// Differences from our serial: each step deletes then adds, ending at `soa`.
    Incremental { soa: Soa, steps: Vec<Diff> },
}

/// One IXFR difference sequence.
#[derive(Debug, Default)]
pub struct Diff {
    pub from: u32,
    pub to: u32,
    pub deleted: Vec<String>,
    pub added: Vec<String>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Verifies the TSIG of each message of one answer, chained as RFC 8945 §5.3.1 says.
struct Verifier {
    signer: TSigner,
    /// The MAC of the query, then of the last signed message.
    previous: Vec<u8>,
    /// Messages since the last signed one (bytes as received).
    unsigned: Vec<Vec<u8>>,
    first: bool,
    last_time: u64,
}

impl Verifier {
    fn message(&mut self, msg: &[u8], parsed: &Message) -> Result<(), XfrError> {
        if parsed.signature.is_none() {
            if self.first {
                return Err(XfrError::Tsig(
                    "the answer is not signed (does the primary know our key?)".into(),
                ));
            }
            if self.unsigned.len() >= MAX_UNSIGNED_RUN {
                return Err(XfrError::Tsig(format!(
                    "more than {MAX_UNSIGNED_RUN} unsigned messages in a row"
                )));
            }
            self.unsigned.push(msg.to_vec());
            return Ok(());
        }
        let bad = |e: &dyn std::fmt::Display| XfrError::Tsig(e.to_string());
        let (tail, rr) = signed_bitmessage_to_buf(msg, None, self.first).map_err(|e| bad(&e))?;
        let tsig = &rr.data;
        if rr.name != *self.signer.signer_name() || tsig.algorithm != *self.signer.algorithm() {
            return Err(XfrError::Tsig(format!(
                "signed with key {} {}, not ours",
                rr.name, tsig.algorithm
            )));
        }
        if let Some(e) = &tsig.error {
            return Err(XfrError::Tsig(format!(
                "the primary refused our key: {e:?} (wrong secret or key name?)"
            )));
        }
        let mut tbv = Vec::with_capacity(tail.len() + 64);
        tbv.extend_from_slice(&(self.previous.len() as u16).to_be_bytes());
        tbv.extend_from_slice(&self.previous);
        for m in self.unsigned.drain(..) {
            tbv.extend_from_slice(&m);
        }
        tbv.extend_from_slice(&tail);
        self.signer
            .verify(&tbv, &tsig.mac)
            .map_err(|_| XfrError::Tsig("the signature does not verify (wrong secret?)".into()))?;
        let now = now();
        if tsig.time.abs_diff(now) > u64::from(tsig.fudge.max(FUDGE)) {
            return Err(XfrError::Tsig(format!(
                "signed at {} but it is {now}: check the clocks",
                tsig.time
            )));
        }
        if tsig.time < self.last_time {
            return Err(XfrError::Tsig("signature times go backwards".into()));
        }
        self.last_time = tsig.time;
        self.previous = tsig.mac.clone();
        self.first = false;
        Ok(())
    }

    /// At the end of the answer: its last message must have been signed.
    fn finish(&self) -> Result<(), XfrError> {
        if self.unsigned.is_empty() {
            Ok(())
        } else {
            Err(XfrError::Tsig("the last message is not signed".into()))
        }
    }
}

/// The query: `kind` AXFR, or IXFR from `have` (our SOA).
fn query(zone: &Name, have: Option<&Soa>, tsig: Option<&TsigKey>) -> (Vec<u8>, Option<Verifier>) {
    let id: u16 = rand::random();
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    let qtype = if have.is_some() {
        RecordType::IXFR
    } else {
        RecordType::AXFR
    };
    let mut q = Query::query(zone.clone(), qtype);
    q.query_class = DNSClass::IN;
    m.queries.push(q);
    if let Some(have) = have {
        // The server only reads the serial of the SOA we send.
        let soa = SOA::new(Name::root(), Name::root(), have.serial, 0, 0, 0, 0);
        m.authorities
            .push(Record::from_rdata(zone.clone(), 0, RData::SOA(soa)));
    }
    let verifier = tsig.map(|k| {
        let signer = TSigner::new(k.secret.clone(), k.algorithm.clone(), k.name.clone(), FUDGE)
            .expect("config accepts only supported algorithms");
        let (sig, _) = signer
            .sign_message(&m, now())
            .expect("a query with one question signs");
        let mac = sig.data.mac.clone();
        m.set_signature(sig);
        Verifier {
            signer,
            previous: mac,
            unsigned: Vec::new(),
            first: true,
            last_time: 0,
        }
    });
    (m.to_vec().expect("a query encodes"), verifier)
}

/// Reads one length-prefixed message; `None` at a clean end of stream.
async fn frame(
    s: &mut (impl AsyncRead + Unpin),
    buf: &mut Vec<u8>,
    timeout: Duration,
) -> Result<Option<()>, XfrError> {
    let mut len = [0u8; 2];
    let read = async {
        match s.read_exact(&mut len).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(XfrError::Io(e)),
        }
        buf.resize(u16::from_be_bytes(len) as usize, 0);
        s.read_exact(buf).await.map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => XfrError::Truncated,
            _ => XfrError::Io(e),
        })?;
        Ok(Some(()))
    };
    tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| XfrError::Timeout(timeout))?
}

/// Ends the reader task when the transfer is done with it, however it ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Reads every message of the answer as fast as the primary sends it, into an unbounded
/// queue (at most the size of the zone): parsing and verifying never hold up the socket, so a
/// primary's send timeout cannot cut a large AXFR short while we are busy. The queue ends at
/// the end of the stream, or with the error that ended it.
fn reader(
    mut r: tokio::net::tcp::OwnedReadHalf,
    timeout: Duration,
) -> (
    tokio::sync::mpsc::UnboundedReceiver<Result<Vec<u8>, XfrError>>,
    AbortOnDrop,
) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        loop {
            let mut buf = Vec::new();
            match frame(&mut r, &mut buf, timeout).await {
                Ok(Some(())) => {
                    if tx.send(Ok(buf)).is_err() {
                        return;
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            }
        }
    });
    (rx, AbortOnDrop(task))
}

/// Where the answer's records are in their sequence.
enum Parse {
    /// Before the first record.
    Start,
    /// After the first SOA (serial `new`): the second record says which kind of answer.
    Second,
    /// An AXFR-style answer: records until the SOA with serial `new` again.
    Full,
    /// An IXFR answer: in a deletion run (true) or addition run (false) of the last diff.
    Diffs { deleting: bool },
    /// The closing SOA has been read.
    Done,
}

/// One transfer of `zone` from `primary`: IXFR from `have`, or AXFR without it.
pub async fn transfer(
    primary: SocketAddr,
    zone: &Name,
    have: Option<&Soa>,
    tsig: Option<&TsigKey>,
    timeout: Duration,
) -> Result<Transfer, XfrError> {
    let mut s = tokio::time::timeout(timeout, TcpStream::connect(primary))
        .await
        .map_err(|_| XfrError::Timeout(timeout))?
        .map_err(XfrError::Connect)?;
    let (q, mut verifier) = query(zone, have, tsig);
    let mut out = Vec::with_capacity(q.len() + 2);
    out.extend_from_slice(&(q.len() as u16).to_be_bytes());
    out.extend_from_slice(&q);
    s.write_all(&out).await.map_err(XfrError::Io)?;
    let id = u16::from_be_bytes([q[0], q[1]]);
    // The write half stays open until the end: a half-close may end the primary's answer.
    let (r, _w) = s.into_split();
    let (mut frames, _reader) = reader(r, timeout);

    let mut state = Parse::Start;
    let mut first_soa: Option<Soa> = None;
    let mut records: Vec<String> = Vec::new();
    let mut steps: Vec<Diff> = Vec::new();
    let zone_lower = zone.to_lowercase();
    let bad = |m: String| XfrError::Malformed(m);
    loop {
        let buf = match frames.recv().await {
            Some(Ok(buf)) => buf,
            Some(Err(e)) => return Err(e),
            None => {
                return Err(match state {
                    Parse::Second => {
                        bad("the primary sent only its SOA (it cannot serve IXFR)".into())
                    }
                    _ => XfrError::Truncated,
                });
            }
        };
        let msg = Message::from_vec(&buf).map_err(|e| bad(e.to_string()))?;
        if msg.metadata.id != id || msg.metadata.message_type != MessageType::Response {
            return Err(bad("an answer to another query".into()));
        }
        if let Some(v) = &mut verifier {
            // A TSIG error (BADKEY, BADSIG) comes back unsigned with NOTAUTH: say so.
            if msg.metadata.response_code == ResponseCode::NotAuth {
                return Err(XfrError::Tsig(format!(
                    "the primary answered NOTAUTH{} (wrong key name or secret?)",
                    msg.signature
                        .as_ref()
                        .and_then(|s| s.data.error.as_ref())
                        .map(|e| format!(" {e:?}"))
                        .unwrap_or_default()
                )));
            }
            v.message(&buf, &msg)?;
        } else if msg.signature.is_some() {
            return Err(XfrError::Tsig(
                "a signed answer to an unsigned query".into(),
            ));
        }
        if msg.metadata.response_code != ResponseCode::NoError {
            return Err(XfrError::Rcode(msg.metadata.response_code));
        }
        for r in &msg.answers {
            let soa = match &r.data {
                RData::SOA(soa) if r.name.to_lowercase() == zone_lower => Some(soa),
                _ => None,
            };
            state = match state {
                Parse::Start => {
                    let soa =
                        soa.ok_or_else(|| bad("the answer does not start with the SOA".into()))?;
                    first_soa = Some(Soa::of(r, soa));
                    Parse::Second
                }
                Parse::Second => {
                    let new = first_soa.as_ref().map_or(0, |s| s.serial);
                    match soa {
                        // IXFR: the first diff starts with our old SOA.
                        Some(soa)
                            if have.is_some_and(|h| h.serial == soa.serial)
                                && soa.serial != new =>
                        {
                            steps.push(Diff {
                                from: soa.serial,
                                ..Diff::default()
                            });
                            Parse::Diffs { deleting: true }
                        }
                        // A zone with nothing but its SOA.
                        Some(soa) if soa.serial == new => Parse::Done,
                        Some(_) => return Err(bad("unexpected SOA in the answer".into())),
                        None => {
                            records.push(line(r));
                            Parse::Full
                        }
                    }
                }
                Parse::Full => match soa {
                    Some(soa) if Some(soa.serial) == first_soa.as_ref().map(|s| s.serial) => {
                        Parse::Done
                    }
                    Some(_) => {
                        return Err(bad("an SOA with another serial inside the zone".into()));
                    }
                    None => {
                        records.push(line(r));
                        Parse::Full
                    }
                },
                Parse::Diffs { deleting } => {
                    let new = first_soa.as_ref().map_or(0, |s| s.serial);
                    match soa {
                        Some(soa) if deleting => {
                            // The end of the deletions: the serial this diff leads to.
                            if let Some(d) = steps.last_mut() {
                                d.to = soa.serial;
                            }
                            Parse::Diffs { deleting: false }
                        }
                        Some(soa)
                            if soa.serial == new && steps.last().is_some_and(|d| d.to == new) =>
                        {
                            Parse::Done
                        }
                        Some(soa) => {
                            if steps.last().is_some_and(|d| d.to != soa.serial) {
                                return Err(bad("IXFR diffs do not chain".into()));
                            }
                            steps.push(Diff {
                                from: soa.serial,
                                ..Diff::default()
                            });
                            Parse::Diffs { deleting: true }
                        }
                        None => {
                            let d = steps.last_mut().expect("a diff is open");
                            if deleting {
                                d.deleted.push(line(r));
                            } else {
                                d.added.push(line(r));
                            }
                            Parse::Diffs { deleting }
                        }
                    }
                }
                Parse::Done => return Err(bad("records after the closing SOA".into())),
            };
        }
        let done = match state {
            Parse::Done => true,
            // One SOA alone: an IXFR answer saying we are current (or the primary is behind).
            // The first SOA alone: an IXFR answer saying we are current (or that the primary is
            // behind us, which the caller refuses).
            Parse::Second => {
                let new = first_soa.as_ref().map_or(0, |s| s.serial);
                have.is_some_and(|h| !super::serial_newer(new, h.serial))
            }
            _ => false,
        };
        if done {
            if let Some(v) = &verifier {
                v.finish()?;
            }
            let soa = first_soa.expect("done after the first SOA");
            return Ok(match state {
                Parse::Second => Transfer::UpToDate(soa),
                _ if !steps.is_empty() => Transfer::Incremental { soa, steps },
                _ => Transfer::Full { soa, records },
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use hickory_proto::rr::rdata::{
        CNAME,
        tsig::{TSIG, TsigAlgorithm, make_tsig_record},
    };

    use super::*;

    fn signer(secret: &[u8]) -> TSigner {
        let name = Name::from_ascii("fraudwall-key.").unwrap();
        TSigner::new(secret.to_vec(), TsigAlgorithm::HmacSha256, name, FUDGE).unwrap()
    }

    /// The first message of an answer to a query whose MAC was `request_mac`, signed by `by`.
    fn signed_answer(by: &TSigner, request_mac: &[u8]) -> Vec<u8> {
        let mut m = Message::new(7, MessageType::Response, OpCode::Query);
        let owner = Name::from_ascii("a.bad.test.rpz.fraud.test.").unwrap();
        m.answers.push(Record::from_rdata(
            owner,
            60,
            RData::CNAME(CNAME(Name::root())),
        ));
        let bytes = m.to_vec().unwrap();
        let stub = TSIG::new(
            by.algorithm().clone(),
            now(),
            FUDGE,
            Vec::new(),
            7,
            None,
            Vec::new(),
        );
        let tbs = by.encode_response_tbs(request_mac, &bytes, &stub).unwrap();
        let mac = by.sign(&tbs).unwrap();
        let tsig = make_tsig_record(by.signer_name().clone(), stub.set_mac(mac));
        m.set_signature(Box::new(tsig));
        m.to_vec().unwrap()
    }

    fn verify(ours: &TSigner, answer: &[u8]) -> Result<(), XfrError> {
        let mut v = Verifier {
            signer: ours.clone(),
            previous: b"the query's MAC".to_vec(),
            unsigned: Vec::new(),
            first: true,
            last_time: 0,
        };
        let parsed = Message::from_vec(answer).map_err(|e| XfrError::Malformed(e.to_string()))?;
        v.message(answer, &parsed)
    }

    #[test]
    fn answers_are_verified_against_our_key_and_the_query() {
        let ours = signer(b"the right secret");
        let good = signed_answer(&ours, b"the query's MAC");
        verify(&ours, &good).expect("signed with our key");
        let wrong = signed_answer(&signer(b"another secret"), b"the query's MAC");
        assert!(matches!(verify(&ours, &wrong), Err(XfrError::Tsig(_))));
        let other_query = signed_answer(&ours, b"another query's MAC");
        assert!(matches!(
            verify(&ours, &other_query),
            Err(XfrError::Tsig(_))
        ));
        let mut tampered = good.clone();
        // The owner name's first letter: `a.bad.test` becomes `b.bad.test`.
        let at = tampered
            .windows(5)
            .position(|w| w == b"\x01a\x03ba")
            .unwrap()
            + 1;
        tampered[at] = b'b';
        assert!(matches!(verify(&ours, &tampered), Err(XfrError::Tsig(_))));
        let mut unsigned = Message::new(7, MessageType::Response, OpCode::Query);
        unsigned.answers = Message::from_vec(&good).unwrap().answers;
        assert!(matches!(
            verify(&ours, &unsigned.to_vec().unwrap()),
            Err(XfrError::Tsig(_))
        ));
    }
}
