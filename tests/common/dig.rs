//! Runs the real `dig` and parses its output.
//!
//! `dig(server, args)` runs `dig @IP -p PORT +tries=1 +time=5 ARGS...` (later args override, e.g.
//! `+time=10`). Don't pass output-format options (`+short`, `+multiline`, `+yaml`): the parser reads
//! dig's default presentation. When dig retries over TCP after TC, the last message is parsed.

use std::net::SocketAddr;
use std::process::Command;

/// One resource record of a section. `ttl` is kept apart from the rest so answers compare TTL-free.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// owner name, lower-cased, fully qualified (`www.example.com.`)
    pub name: String,
    pub ttl: u32,
    pub class: String,
    /// `A`, `AAAA`, `CNAME`, `RRSIG`, `TYPE65534`, ...
    pub rtype: String,
    /// presentation rdata, whitespace collapsed to single spaces
    pub rdata: String,
}

impl Record {
    /// `name TYPE rdata` (no TTL, no class)
    pub fn normalized(&self) -> String {
        format!("{} {} {}", self.name, self.rtype, self.rdata)
    }
}

/// An Extended DNS Error option: `; EDE: 15 (Blocked): (text)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ede {
    pub code: u16,
    /// dig's name for the code (`Blocked`, `DNSSEC Bogus`); empty if dig printed none
    pub purpose: String,
    /// EXTRA-TEXT, if any (without the surrounding parentheses)
    pub text: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct DigResult {
    /// rcode name (`NOERROR`, `NXDOMAIN`, `SERVFAIL`, `REFUSED`, ...), or `NO-RESPONSE` if dig got
    /// no answer (timeout, connection refused)
    pub status: String,
    /// header flags as dig prints them: `qr`, `aa`, `tc`, `rd`, `ra`, `ad`, `cd`
    pub flags: Vec<String>,
    /// header counts: QUERY, ANSWER, AUTHORITY, ADDITIONAL (ADDITIONAL includes the OPT record)
    pub counts: [u16; 4],
    pub answer: Vec<Record>,
    pub authority: Vec<Record>,
    /// additional section records (without OPT, which dig prints as the pseudosection)
    pub additional: Vec<Record>,
    pub ede: Vec<Ede>,
    /// an `OPT PSEUDOSECTION` was present (the response carried EDNS)
    pub has_opt: bool,
    /// EDNS flags of the response's OPT (`do`), if any
    pub edns_flags: Vec<String>,
    /// EDNS UDP payload size of the response's OPT, if any
    pub edns_udp: Option<u16>,
    /// dig saw TC over UDP and retried over TCP (`;; Truncated, retrying in TCP mode.`)
    pub retried_tcp: bool,
    /// the parsed response came over TCP
    pub over_tcp: bool,
    /// dig's exit code (0 ok, 9 no reply, 10 internal error, ...)
    pub exit_code: i32,
    /// dig's stdout (and stderr, appended)
    pub raw: String,
}

impl DigResult {
    pub fn rcode(&self) -> &str {
        &self.status
    }
    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f.eq_ignore_ascii_case(flag))
    }
    pub fn ad(&self) -> bool {
        self.has_flag("ad")
    }
    pub fn aa(&self) -> bool {
        self.has_flag("aa")
    }
    pub fn tc(&self) -> bool {
        self.has_flag("tc")
    }
    pub fn ra(&self) -> bool {
        self.has_flag("ra")
    }
    /// Answer section as sorted `name TYPE rdata` strings (TTL-free) for comparing resolvers.
    pub fn normalized_answer(&self) -> Vec<String> {
        let mut v: Vec<String> = self.answer.iter().map(Record::normalized).collect();
        v.sort();
        v
    }
    /// rdata of the answer records of one type (in the order given), e.g. `answer_rdata("A")`.
    pub fn answer_rdata(&self, rtype: &str) -> Vec<String> {
        self.answer
            .iter()
            .filter(|r| r.rtype.eq_ignore_ascii_case(rtype))
            .map(|r| r.rdata.clone())
            .collect()
    }
    pub fn authority_types(&self) -> Vec<String> {
        self.authority.iter().map(|r| r.rtype.clone()).collect()
    }
    pub fn ede_codes(&self) -> Vec<u16> {
        self.ede.iter().map(|e| e.code).collect()
    }
}

/// Runs `dig @server.ip -p server.port +tries=1 +time=5 args...` and parses the result.
pub fn dig(server: SocketAddr, args: &[&str]) -> DigResult {
    let out = Command::new("dig")
        .arg(format!("@{}", server.ip()))
        .arg("-p")
        .arg(server.port().to_string())
        .arg("+tries=1")
        .arg("+time=5")
        .args(args)
        .output()
        .expect("cannot run dig (apt-get install dnsutils)");
    let mut raw = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !stderr.is_empty() {
        raw.push_str(&stderr);
    }
    let mut r = parse(&raw);
    r.exit_code = out.status.code().unwrap_or(-1);
    r
}

/// Parses dig's default output (the last message in it).
pub fn parse(raw: &str) -> DigResult {
    let mut r = DigResult {
        status: "NO-RESPONSE".to_string(),
        raw: raw.to_string(),
        retried_tcp: raw.contains(";; Truncated, retrying in TCP mode."),
        ..DigResult::default()
    };
    let Some(start) = raw.rfind(";; ->>HEADER<<-") else {
        return r;
    };
    #[derive(PartialEq)]
    enum Sec {
        None,
        Opt,
        Answer,
        Authority,
        Additional,
    }
    let mut sec = Sec::None;
    for line in raw[start..].lines() {
        let t = line.trim_end();
        if let Some(h) = t.strip_prefix(";; ->>HEADER<<-") {
            if let Some(s) = h.split("status:").nth(1) {
                r.status = s.split(',').next().unwrap_or("").trim().to_string();
            }
            continue;
        }
        if let Some(f) = t.strip_prefix(";; flags:") {
            let (flags, counts) = f.split_once(';').unwrap_or((f, ""));
            r.flags = flags.split_whitespace().map(str::to_string).collect();
            for (i, key) in ["QUERY:", "ANSWER:", "AUTHORITY:", "ADDITIONAL:"]
                .iter()
                .enumerate()
            {
                if let Some(v) = counts.split(key).nth(1) {
                    r.counts[i] = v
                        .trim_start()
                        .split(|c: char| !c.is_ascii_digit())
                        .next()
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(0);
                }
            }
            continue;
        }
        if t.starts_with(";; SERVER:") {
            r.over_tcp = t.ends_with("(TCP)");
            sec = Sec::None;
            continue;
        }
        match t {
            ";; OPT PSEUDOSECTION:" => {
                r.has_opt = true;
                sec = Sec::Opt;
                continue;
            }
            ";; ANSWER SECTION:" => {
                sec = Sec::Answer;
                continue;
            }
            ";; AUTHORITY SECTION:" => {
                sec = Sec::Authority;
                continue;
            }
            ";; ADDITIONAL SECTION:" => {
                sec = Sec::Additional;
                continue;
            }
            "" => {
                sec = Sec::None;
                continue;
            }
            _ => {}
        }
        match sec {
            Sec::Opt => {
                if let Some(e) = t.strip_prefix("; EDE:") {
                    r.ede.push(parse_ede(e));
                } else if let Some(e) = t.strip_prefix("; EDNS:") {
                    // "; EDNS: version: 0, flags: do; udp: 1232"
                    if let Some(f) = e.split("flags:").nth(1) {
                        let f = f.split(';').next().unwrap_or("");
                        r.edns_flags = f.split_whitespace().map(str::to_string).collect();
                    }
                    if let Some(u) = e.split("udp:").nth(1) {
                        r.edns_udp = u.trim().parse().ok();
                    }
                }
            }
            Sec::Answer | Sec::Authority | Sec::Additional if !t.starts_with(';') => {
                if let Some(rec) = parse_record(t) {
                    match sec {
                        Sec::Answer => r.answer.push(rec),
                        Sec::Authority => r.authority.push(rec),
                        _ => r.additional.push(rec),
                    }
                }
            }
            _ => {}
        }
    }
    r
}

fn parse_record(line: &str) -> Option<Record> {
    let mut it = line.split_whitespace();
    let name = it.next()?.to_ascii_lowercase();
    let ttl = it.next()?.parse().ok()?;
    let class = it.next()?.to_string();
    let rtype = it.next()?.to_string();
    let rdata = it.collect::<Vec<_>>().join(" ");
    Some(Record {
        name,
        ttl,
        class,
        rtype,
        rdata,
    })
}

/// ` 15 (Blocked): (some text)` / ` 9 (DNSKEY Missing)` / ` 49152`
pub fn parse_ede(s: &str) -> Ede {
    let s = s.trim();
    let (code, rest) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let code = code.parse().unwrap_or(u16::MAX);
    let rest = rest.trim_start();
    let mut purpose = String::new();
    let mut tail = rest;
    if rest.starts_with('(')
        && let Some(end) = rest.find(')')
    {
        purpose = rest[1..end].to_string();
        tail = &rest[end + 1..];
    }
    let tail = tail.trim_start_matches(':').trim();
    let text = if tail.is_empty() {
        None
    } else {
        let t = tail
            .strip_prefix('(')
            .and_then(|t| t.strip_suffix(')'))
            .unwrap_or(tail);
        Some(t.to_string())
    };
    Ede {
        code,
        purpose,
        text,
    }
}
