//! Source list parsers.
//!
//! Every parser follows the same shape (after ripgrep's config parser): [`parse`] reads a file and
//! hands it to [`parse_reader`]; each bad line becomes a [`Diagnostic`] (`path:line: reason`) and
//! the good lines are still used. Only a file that cannot be used at all (unreadable, binary) is an
//! [`Error`].
//!
//! Parsers return *raw* names (case, trailing dots, `*.` and Unicode as written); normalisation
//! happens at compile time in [`super::normalize`], so the same rules apply to every format.
//! Each entry carries the kind/action/match mode its format implies; `None` means "the list's
//! [`ListSpec`](super::ListSpec) default". The consumer of the entries says what it made of each
//! one ([`Taken`]), so that its rejections are reported in file order with the parser's own.
//!
//! # Addresses
//! An entry may be an IP prefix instead of a name ([`Entry::ip`]): an RPZ `rpz-ip` trigger, or a
//! plain-list line when the list allows addresses ([`Options::ips`], or a `# fraudwall: ips`
//! comment before its first entry). A prefix must be a network address (`198.51.100.0/24`, not
//! `198.51.100.7/24`) and its length at most 32 or 128: anything else is a bad line.
//!
//! # Bounds
//! Every parser does work linear in its input and keeps only bounded state between lines: a
//! line is at most [`MAX_LINE`] bytes, a record or statement spanning lines is at most
//! [`MAX_RECORD_LINES`] lines and [`MAX_LINE`] bytes, and at most [`MAX_DIAGNOSTICS`]
//! diagnostics are kept per file (the rest are only counted). A file that is not empty but of
//! which no entry can be used is an error ([`Error::NoEntries`]), not an empty list.

use std::collections::VecDeque;
use std::fmt;
use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::{Action, Error, Format, ListKind, MatchMode};

mod bind;

/// Longest line accepted; longer lines are rejected (no list needs them, and they bound work).
pub const MAX_LINE: usize = 4096;
/// Most lines one record may span (an RPZ record in parentheses, a BIND zone statement); a SOA
/// record takes about 7. Also the most tokens a BIND zone statement may have.
pub const MAX_RECORD_LINES: usize = 64;
/// Diagnostics kept per file; the rest are counted ([`Visited::omitted_diagnostics`]), so a
/// million bad lines cost a counter, not a million messages.
pub const MAX_DIAGNOSTICS: usize = 100;
/// Problems quoted in an [`Error::NoEntries`] message.
const NO_ENTRY_EXAMPLES: usize = 3;
/// How many leading bytes are checked for NUL to recognise binary files (as git and ripgrep do).
const BINARY_PROBE: usize = 8192;
/// How many meaningful lines the format sniffer looks at.
const SNIFF_LINES: usize = 200;

/// How serious a [`Diagnostic`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// The line was rejected (malformed, invalid name).
    Error,
    /// The line (or file) was used but looks wrong.
    Warning,
    /// A well-formed rule this engine does not support (e.g. adblock `$modifiers`); not loaded.
    Skipped,
    /// A valid entry the guard rails refuse (a public suffix, a protected name); not loaded.
    Refused,
}

/// A problem with one line (or, when `line` is `None`, with the file as a whole).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// The list file.
    pub path: PathBuf,
    /// 1-based line number; `None` for whole-file remarks.
    pub line: Option<u64>,
    /// How serious it is.
    pub severity: Severity,
    /// Human-readable reason.
    pub reason: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        let tag = match self.severity {
            Severity::Error => "",
            Severity::Warning => "warning: ",
            Severity::Skipped => "skipped: ",
            Severity::Refused => "refused: ",
        };
        write!(f, ": {tag}{}", self.reason)
    }
}

/// Line counts of one parsed file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ParseStats {
    /// Lines read.
    pub lines: u64,
    /// Entries taken by the consumer (a hosts line may produce several).
    pub entries: u64,
    /// Comments, blank lines, directives (`server:`, `$TTL`, SOA, NS…) and localhost entries.
    pub ignored: u64,
    /// Well-formed but unsupported rules (reported with [`Severity::Skipped`]).
    pub skipped: u64,
    /// Rejected lines or names (reported with [`Severity::Error`]).
    pub rejected: u64,
    /// Warnings (the entry was still used, or a whole-file remark).
    pub warnings: u64,
    /// Entries refused by the guard rails (reported with [`Severity::Refused`]).
    pub refused: u64,
}

impl ParseStats {
    /// Adds the counts of another part of the same file.
    fn add(&mut self, o: &ParseStats) {
        self.lines += o.lines;
        self.entries += o.entries;
        self.ignored += o.ignored;
        self.skipped += o.skipped;
        self.rejected += o.rejected;
        self.warnings += o.warnings;
        self.refused += o.refused;
    }
}

/// What the consumer of [`visit`] made of one entry: how it is counted and reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Taken {
    /// Used.
    Accepted,
    /// Used, with a remark (e.g. it blocks a whole TLD).
    Warning(String),
    /// Not used: the name is invalid.
    Rejected(String),
    /// Not used: the guard rails refuse it (a public suffix, a protected name).
    Refused(String),
}

/// One raw entry as written in the source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The name as written (not yet normalised).
    pub name: String,
    /// 1-based line number.
    pub line: u64,
    /// Kind fixed by the format (adblock `@@`, RPZ passthru, unbound transparent), else `None`.
    pub kind: Option<ListKind>,
    /// Action fixed by the format (RPZ), else `None`.
    pub action: Option<Action>,
    /// Match mode fixed by the format, else `None` (plain lists use the spec's default).
    pub match_mode: Option<MatchMode>,
    /// An address prefix instead of a name (then `name` is its text, e.g. `198.51.100.0/24`).
    pub ip: Option<ipnet::IpNet>,
}

/// A borrowed [`Entry`], handed to the streaming sink so that compiling millions of names does
/// not allocate one `String` each.
#[derive(Clone, Copy, Debug)]
pub struct RawEntry<'a> {
    /// The name as written.
    pub name: &'a str,
    /// 1-based line number.
    pub line: u64,
    /// See [`Entry::kind`].
    pub kind: Option<ListKind>,
    /// See [`Entry::action`].
    pub action: Option<Action>,
    /// See [`Entry::match_mode`].
    pub match_mode: Option<MatchMode>,
    /// See [`Entry::ip`].
    pub ip: Option<ipnet::IpNet>,
}

/// The result of parsing one file.
#[derive(Clone, Debug)]
pub struct Parsed {
    /// The format used (given, by extension, or sniffed).
    pub format: Format,
    /// The entries, in file order.
    pub entries: Vec<Entry>,
    /// The first [`MAX_DIAGNOSTICS`] problems, in file order (whole-file remarks first).
    pub diagnostics: Vec<Diagnostic>,
    /// Problems beyond [`MAX_DIAGNOSTICS`], counted but not kept.
    pub omitted_diagnostics: u64,
    /// Line counts.
    pub stats: ParseStats,
}

/// What [`visit`] reports besides the entries it streams.
#[derive(Clone, Debug)]
pub struct Visited {
    /// The format used.
    pub format: Format,
    /// The first [`MAX_DIAGNOSTICS`] problems, in file order (whole-file remarks first).
    pub diagnostics: Vec<Diagnostic>,
    /// Problems beyond [`MAX_DIAGNOSTICS`], counted but not kept.
    pub omitted_diagnostics: u64,
    /// Line counts.
    pub stats: ParseStats,
}

/// Reads and parses the list at `path`; `format: None` picks it by extension, then by content.
pub fn parse(path: &Path, format: Option<Format>) -> Result<Parsed, Error> {
    let data = read_list(path)?;
    parse_bytes(&data, path, format)
}

/// Parses a list from any reader; `path` is used for diagnostics and extension-based detection.
pub fn parse_reader<R: Read>(
    mut rdr: R,
    path: &Path,
    format: Option<Format>,
) -> Result<Parsed, Error> {
    let mut data = Vec::new();
    rdr.read_to_end(&mut data)
        .map_err(|source| Error::ReadList {
            path: path.to_path_buf(),
            source,
        })?;
    parse_bytes(&data, path, format)
}

/// Parses a list held in memory.
pub fn parse_bytes(data: &[u8], path: &Path, format: Option<Format>) -> Result<Parsed, Error> {
    let mut entries = Vec::new();
    let v = visit(data, path, format, &mut |e: RawEntry<'_>| {
        entries.push(Entry {
            name: e.name.to_string(),
            line: e.line,
            kind: e.kind,
            action: e.action,
            match_mode: e.match_mode,
            ip: e.ip,
        });
        Taken::Accepted
    })?;
    Ok(Parsed {
        format: v.format,
        entries,
        diagnostics: v.diagnostics,
        omitted_diagnostics: v.omitted_diagnostics,
        stats: v.stats,
    })
}

/// Reads a list file whole; the error says which file.
pub fn read_list(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| Error::ReadList {
        path: path.to_path_buf(),
        source,
    })
}

/// What a list allows beyond its format's grammar.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Plain-list lines may be IP addresses and prefixes ([`super::ListSpec::ips`]).
    pub ips: bool,
}

/// Streams the entries of `data` into `sink` and returns the format, diagnostics and counts.
///
/// `sink` says what it made of each entry. A file with lines but no entry taken, and at least
/// one line rejected, skipped or refused, is [`Error::NoEntries`] (after every entry went to
/// `sink`); an empty file, or one of comments and directives only, is a valid empty list.
pub fn visit(
    data: &[u8],
    path: &Path,
    format: Option<Format>,
    sink: &mut dyn FnMut(RawEntry<'_>) -> Taken,
) -> Result<Visited, Error> {
    visit_with(data, path, format, Options::default(), sink)
}

/// [`visit`] with the list's [`Options`].
pub fn visit_with(
    data: &[u8],
    path: &Path,
    format: Option<Format>,
    options: Options,
    sink: &mut dyn FnMut(RawEntry<'_>) -> Taken,
) -> Result<Visited, Error> {
    let (data, format) = prelude(data, path, format)?;
    let mut out = Out::new(path, sink);
    let mut parser = parser(format, options, true);
    read_lines(data, 0, &mut *parser, &mut out);
    parser.finish(&mut out);
    conclude(data, path, format, out)
}

/// [`visit_with`] that reads the two halves of a large file at once, for formats whose lines
/// stand alone (plain, hosts, adblock, dnsmasq, unbound): the first half's entries go to
/// `first` on this thread, the second half's to `second` on another, and the diagnostics,
/// counts and line numbers come out as one pass would give them. A file under `min_split`
/// bytes, in another format, or on one core is read in one pass, all of it to `first`.
pub fn visit_split(
    data: &[u8],
    path: &Path,
    format: Option<Format>,
    options: Options,
    min_split: usize,
    first: &mut (dyn FnMut(RawEntry<'_>) -> Taken + Send),
    second: &mut (dyn FnMut(RawEntry<'_>) -> Taken + Send),
) -> Result<Visited, Error> {
    let (body, fmt) = prelude(data, path, format)?;
    let standalone = matches!(
        fmt,
        Format::Plain | Format::Hosts | Format::Adblock | Format::Dnsmasq | Format::Unbound
    );
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let mid = (body.len() / 2).max(1);
    // The second half starts after the newline nearest the middle.
    let split = body[mid.min(body.len())..]
        .iter()
        .position(|&b| b == b'\n')
        .map(|p| mid + p + 1)
        .filter(|&at| at < body.len());
    let Some(at) = split.filter(|_| standalone && cores > 1 && body.len() >= min_split) else {
        return visit_with(data, path, format, options, first);
    };
    let (head, tail) = body.split_at(at);
    let head_lines = newlines(head);
    // The second half's parser starts past the header (which comes before the first entry),
    // with what the header said.
    let tail_options = Options {
        ips: options.ips || (fmt == Format::Plain && declares_ips(body)),
    };
    let tail_sink = &mut *second;
    let (mut out, tail_out) = std::thread::scope(|scope| {
        let tail_job = std::thread::Builder::new().spawn_scoped(scope, move || {
            let mut out = Out::new(path, tail_sink);
            let mut parser = parser(fmt, tail_options, false);
            read_lines(tail, head_lines, &mut *parser, &mut out);
            parser.finish(&mut out);
            (out.diagnostics, out.omitted, out.stats)
        });
        let mut out = Out::new(path, first);
        let mut parser = parser(fmt, options, true);
        read_lines(head, 0, &mut *parser, &mut out);
        parser.finish(&mut out);
        let tail_out = match tail_job {
            Ok(job) => Ok(job.join().unwrap_or_else(|p| std::panic::resume_unwind(p))),
            Err(e) => Err(e),
        };
        (out, tail_out)
    });
    let (diagnostics, omitted, stats) = match tail_out {
        Ok(t) => t,
        // No thread: the second half here, the same way.
        Err(_) => {
            let mut tail_out = Out::new(path, second);
            let mut parser = parser(fmt, tail_options, false);
            read_lines(tail, head_lines, &mut *parser, &mut tail_out);
            parser.finish(&mut tail_out);
            (tail_out.diagnostics, tail_out.omitted, tail_out.stats)
        }
    };
    out.stats.add(&stats);
    let room = MAX_DIAGNOSTICS.saturating_sub(out.diagnostics.len());
    let kept = diagnostics.len().min(room);
    out.omitted += omitted + (diagnostics.len() - kept) as u64;
    out.diagnostics.extend(diagnostics.into_iter().take(kept));
    conclude(body, path, fmt, out)
}

/// Lines in `data` as [`lines`] reads them: one per newline.
fn newlines(data: &[u8]) -> u64 {
    data.iter().filter(|&&b| b == b'\n').count() as u64
}

/// Refuses binary data, drops a byte-order mark and settles the format.
fn prelude<'d>(
    data: &'d [u8],
    path: &Path,
    format: Option<Format>,
) -> Result<(&'d [u8], Format), Error> {
    let probe = &data[..data.len().min(BINARY_PROBE)];
    if let Some(offset) = probe.iter().position(|&b| b == 0) {
        return Err(Error::BinaryList {
            path: path.to_path_buf(),
            offset: offset as u64,
        });
    }
    let data = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    Ok((data, format.unwrap_or_else(|| detect_format(path, data))))
}

/// The line parser of `format`; `header`: the file's first line is the first it reads.
fn parser(format: Format, options: Options, header: bool) -> Box<dyn LineParser> {
    match format {
        Format::Plain => Box::new(Plain {
            ips: options.ips,
            header,
        }),
        Format::Hosts => Box::new(Hosts),
        Format::Adblock => Box::new(Adblock),
        Format::Dnsmasq => Box::new(Dnsmasq),
        Format::Unbound => Box::new(Unbound),
        Format::Rpz => Box::new(Rpz::default()),
        Format::Bind => Box::new(bind::Bind::default()),
    }
}

/// Feeds the lines of `data` to `parser`, numbered from `before + 1`.
fn read_lines(data: &[u8], before: u64, parser: &mut dyn LineParser, out: &mut Out<'_>) {
    for (idx, raw) in lines(data).enumerate() {
        let no = before + idx as u64 + 1;
        out.stats.lines += 1;
        if raw.len() > MAX_LINE {
            out.reject(
                no,
                format!("line is {} bytes long (limit {MAX_LINE})", raw.len()),
            );
            continue;
        }
        match std::str::from_utf8(raw) {
            Ok(text) => parser.line(no, text, out),
            Err(e) => out.reject(
                no,
                format!("invalid UTF-8 at byte {} of the line", e.valid_up_to() + 1),
            ),
        }
    }
}

/// What a whole file's read comes to: an error when nothing in it could be used.
fn conclude(data: &[u8], path: &Path, format: Format, mut out: Out<'_>) -> Result<Visited, Error> {
    let s = out.stats;
    if s.entries == 0 {
        if s.rejected + s.skipped + s.refused > 0 {
            return Err(no_entries(path, format, &out));
        }
        let why = if s.lines == 0 || data.iter().all(u8::is_ascii_whitespace) {
            "file is empty; no entries loaded"
        } else {
            "no entries (only comments, blank lines and directives)"
        };
        out.file_warning(why);
    }
    Ok(Visited {
        format,
        diagnostics: out.diagnostics,
        omitted_diagnostics: out.omitted,
        stats: out.stats,
    })
}

/// The error for a file of which nothing could be used, quoting its first problems.
fn no_entries(path: &Path, format: Format, out: &Out<'_>) -> Error {
    let s = out.stats;
    let mut reason = format!(
        "read as {}, {} lines gave no entry ({} rejected, {} skipped, {} refused)",
        format.as_str(),
        s.lines,
        s.rejected,
        s.skipped,
        s.refused
    );
    let first: Vec<String> = out
        .diagnostics
        .iter()
        .filter(|d| d.severity != Severity::Warning)
        .take(NO_ENTRY_EXAMPLES)
        .map(|d| {
            let tag = match d.severity {
                Severity::Skipped => "skipped: ",
                Severity::Refused => "refused: ",
                Severity::Error | Severity::Warning => "",
            };
            format!("line {}: {tag}{}", d.line.unwrap_or(0), d.reason)
        })
        .collect();
    if !first.is_empty() {
        reason.push_str("; first: ");
        reason.push_str(&first.join("; "));
    }
    reason.push_str(
        "; check that the file is a list and its format is right (`format:` in blocklists.lists)",
    );
    Error::NoEntries {
        path: path.to_path_buf(),
        reason,
        stats: s,
    }
}

/// Splits on `\n` and strips a trailing `\r`, so CRLF files parse like LF files.
fn lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let body = data.strip_suffix(b"\n").unwrap_or(data);
    let empty = data.is_empty();
    body.split(|&b| b == b'\n')
        .filter(move |_| !empty)
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
}

/// Picks a format: by extension where it is unambiguous, else from content.
pub fn detect_format(path: &Path, data: &[u8]) -> Format {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase());
    match ext.as_deref() {
        // BIND lists of null zones are sometimes saved as `.zone` too.
        Some("rpz" | "zone") if sniff(data) != Format::Bind => return Format::Rpz,
        Some("hosts") => return Format::Hosts,
        Some("conf") if memfind(data, b"local-zone") => return Format::Unbound,
        _ => {}
    }
    sniff(data)
}

fn memfind(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Guesses the format from the first meaningful lines; plain when nothing is decisive.
pub fn sniff(data: &[u8]) -> Format {
    let mut seen = 0;
    for raw in lines(data) {
        let Ok(line) = std::str::from_utf8(raw) else {
            continue;
        };
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with("//") {
            continue;
        }
        seen += 1;
        if seen > SNIFF_LINES {
            break;
        }
        if bind::starts_zone_statement(line) {
            return Format::Bind;
        }
        if line.starts_with('!')
            || line.starts_with("[Adblock")
            || line.starts_with("||")
            || line.starts_with("@@")
        {
            return Format::Adblock;
        }
        if line.starts_with("address=/")
            || line.starts_with("server=/")
            || line.starts_with("local=/")
        {
            return Format::Dnsmasq;
        }
        if line.starts_with("local-zone:") || line == "server:" || line.starts_with("local-data:") {
            return Format::Unbound;
        }
        if line.starts_with(';') || line.starts_with("$TTL") || line.starts_with("$ORIGIN") {
            return Format::Rpz;
        }
        let mut toks = line.split_whitespace();
        let first = toks.next().unwrap_or("");
        if toks
            .clone()
            .any(|t| t.eq_ignore_ascii_case("SOA") || t.eq_ignore_ascii_case("CNAME"))
        {
            return Format::Rpz;
        }
        if first.parse::<IpAddr>().is_ok() && toks.next().is_some() {
            return Format::Hosts;
        }
    }
    Format::Plain
}

/// Collects what the line parsers find.
struct Out<'a> {
    path: &'a Path,
    /// At most [`MAX_DIAGNOSTICS`], plus whole-file remarks.
    diagnostics: Vec<Diagnostic>,
    /// Diagnostics counted but not kept.
    omitted: u64,
    stats: ParseStats,
    sink: &'a mut dyn FnMut(RawEntry<'_>) -> Taken,
}

impl<'a> Out<'a> {
    fn new(path: &'a Path, sink: &'a mut dyn FnMut(RawEntry<'_>) -> Taken) -> Out<'a> {
        Out {
            path,
            diagnostics: Vec::new(),
            omitted: 0,
            stats: ParseStats::default(),
            sink,
        }
    }

    fn emit(
        &mut self,
        line: u64,
        name: &str,
        kind: Option<ListKind>,
        action: Option<Action>,
        mode: Option<MatchMode>,
    ) {
        self.emit_entry(RawEntry {
            name,
            line,
            kind,
            action,
            match_mode: mode,
            ip: None,
        });
    }

    /// Emits an address-prefix entry.
    fn emit_ip(
        &mut self,
        line: u64,
        net: ipnet::IpNet,
        kind: Option<ListKind>,
        action: Option<Action>,
    ) {
        let name = net.to_string();
        self.emit_entry(RawEntry {
            name: &name,
            line,
            kind,
            action,
            match_mode: Some(MatchMode::Subtree),
            ip: Some(net),
        });
    }

    fn emit_entry(&mut self, e: RawEntry<'_>) {
        let line = e.line;
        let taken = (self.sink)(e);
        match taken {
            Taken::Accepted => self.stats.entries += 1,
            Taken::Warning(reason) => {
                self.stats.entries += 1;
                self.warn(line, reason);
            }
            Taken::Rejected(reason) => self.reject(line, reason),
            Taken::Refused(reason) => {
                self.stats.refused += 1;
                self.diag(Some(line), Severity::Refused, reason);
            }
        }
    }

    fn diag(&mut self, line: Option<u64>, severity: Severity, reason: String) {
        if self.diagnostics.len() >= MAX_DIAGNOSTICS {
            self.omitted += 1;
            return;
        }
        self.diagnostics.push(Diagnostic {
            path: self.path.to_path_buf(),
            line,
            severity,
            reason,
        });
    }

    fn reject(&mut self, line: u64, reason: String) {
        self.stats.rejected += 1;
        self.diag(Some(line), Severity::Error, reason);
    }

    fn skip(&mut self, line: u64, reason: String) {
        self.stats.skipped += 1;
        self.diag(Some(line), Severity::Skipped, reason);
    }

    fn warn(&mut self, line: u64, reason: String) {
        self.stats.warnings += 1;
        self.diag(Some(line), Severity::Warning, reason);
    }

    /// A remark about the whole file: always kept, before the per-line diagnostics.
    fn file_warning(&mut self, reason: &str) {
        self.stats.warnings += 1;
        self.diagnostics.insert(
            0,
            Diagnostic {
                path: self.path.to_path_buf(),
                line: None,
                severity: Severity::Warning,
                reason: reason.to_string(),
            },
        );
    }

    fn ignore(&mut self) {
        self.stats.ignored += 1;
    }
}

/// One format's line grammar.
trait LineParser {
    fn line(&mut self, no: u64, line: &str, out: &mut Out<'_>);
    fn finish(&mut self, _out: &mut Out<'_>) {}
}

/// Quotes a line fragment for a diagnostic, shortened so a 1 MB line cannot flood the log.
fn q(s: &str) -> String {
    const SHOW: usize = 60;
    if s.len() <= SHOW {
        return format!("{s:?}");
    }
    let mut end = SHOW;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}…", &s[..end])
}

/// Text before the first `#` (a comment in plain and hosts lists, where `#` cannot occur in names).
fn before_hash(line: &str) -> &str {
    line.split('#').next().unwrap_or("")
}

struct Plain {
    /// Address lines are entries ([`Options::ips`] or the header comment).
    ips: bool,
    /// No entry line seen yet: a `# fraudwall: ips` comment still counts.
    header: bool,
}

/// Whether a plain list's text turns address lines on with the `# fraudwall: ips` header (a
/// comment before the first entry), as the parser reads it: what a part of the file appended
/// later is parsed with.
pub fn declares_ips(data: &[u8]) -> bool {
    for raw in lines(data) {
        let line = String::from_utf8_lossy(raw);
        if before_hash(&line).trim().is_empty() {
            if is_ips_header(&line) {
                return true;
            }
            continue;
        }
        return false;
    }
    false
}

/// Whether a comment line is the `# fraudwall: ips` header (spaces optional, any case).
fn is_ips_header(line: &str) -> bool {
    let Some(c) = line.trim().strip_prefix('#') else {
        return false;
    };
    let c: String = c.chars().filter(|c| !c.is_whitespace()).collect();
    c.eq_ignore_ascii_case("fraudwall:ips")
}

/// Parses an address (`198.51.100.7`, a /32 or /128) or a prefix (`198.51.100.0/24`) of an
/// address list. The error is a line's reason.
pub fn parse_prefix(text: &str) -> Result<ipnet::IpNet, String> {
    let (addr, len) = match text.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (text, None),
    };
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| format!("{} is not an IP address or prefix", q(text)))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = match len {
        None => max,
        Some(l) => match l.parse::<u8>() {
            Ok(n) if n <= max => n,
            _ => {
                return Err(format!(
                    "prefix length /{l} of {} is not 0 to {max}",
                    q(text)
                ));
            }
        },
    };
    let net = ipnet::IpNet::new(addr, len).map_err(|e| format!("{}: {e}", q(text)))?;
    if net.trunc() != net {
        return Err(format!(
            "{} has host bits set: the network is {} (write that, or the address alone)",
            q(text),
            net.trunc()
        ));
    }
    Ok(net)
}

impl LineParser for Plain {
    fn line(&mut self, no: u64, line: &str, out: &mut Out<'_>) {
        let text = before_hash(line).trim();
        if text.is_empty() {
            if self.header && is_ips_header(line) {
                self.ips = true;
            }
            return out.ignore();
        }
        self.header = false;
        let mut toks = text.split_whitespace();
        let name = toks.next().unwrap_or("");
        if let Some(extra) = toks.next() {
            return out.reject(
                no,
                format!("unexpected text {} after name {}", q(extra), q(name)),
            );
        }
        let looks_ip = name.contains('/') || name.parse::<IpAddr>().is_ok();
        if looks_ip && self.ips {
            return match parse_prefix(name) {
                Ok(net) => out.emit_ip(no, net, None, None),
                Err(why) => out.reject(no, why),
            };
        }
        if looks_ip
            && name
                .split('/')
                .next()
                .is_some_and(|a| a.parse::<IpAddr>().is_ok())
        {
            return out.reject(
                no,
                format!(
                    "{} is an IP address, not a domain name; to block answers by address, set `ips: true` on the list in blocklists.lists or put `# fraudwall: ips` at the top of the file",
                    q(name)
                ),
            );
        }
        out.emit(no, name, None, None, None);
    }
}

/// Names a hosts file maps for the machine itself; never entries.
fn is_localhost_name(name: &str) -> bool {
    let n = name.trim_end_matches('.').to_ascii_lowercase();
    matches!(
        n.as_str(),
        "localhost"
            | "localhost.localdomain"
            | "local"
            | "broadcasthost"
            | "0.0.0.0"
            | "localhost4"
            | "localhost6"
    ) || n.starts_with("ip6-")
        || n.starts_with("localhost4.")
        || n.starts_with("localhost6.")
}

/// Addresses hosts-based blockers map names to.
fn is_sink(ip: &IpAddr) -> bool {
    ip.is_unspecified() || ip.is_loopback()
}

struct Hosts;

impl LineParser for Hosts {
    fn line(&mut self, no: u64, line: &str, out: &mut Out<'_>) {
        let text = before_hash(line).trim();
        if text.is_empty() {
            return out.ignore();
        }
        let mut toks = text.split_whitespace();
        let addr = toks.next().unwrap_or("");
        let Ok(ip) = addr.parse::<IpAddr>() else {
            return out.reject(
                no,
                format!("expected `<address> <name>…`, found {}", q(addr)),
            );
        };
        let names: Vec<&str> = toks.collect();
        if names.is_empty() {
            return out.reject(no, format!("address {addr} without names"));
        }
        if names.iter().all(|n| is_localhost_name(n)) {
            return out.ignore();
        }
        if !is_sink(&ip) {
            out.warn(
                no,
                format!("{addr} is not a sink address; names are blocked anyway"),
            );
        }
        for name in names {
            if !is_localhost_name(name) {
                out.emit(no, name, None, None, Some(MatchMode::Subtree));
            }
        }
    }
}

struct Adblock;

impl LineParser for Adblock {
    fn line(&mut self, no: u64, line: &str, out: &mut Out<'_>) {
        let text = line.trim();
        if text.is_empty()
            || text.starts_with('!')
            || (text.starts_with('[') && text.ends_with(']'))
        {
            return out.ignore();
        }
        if let Some(rest) = text.strip_prefix('#') {
            // `##`, `#@#`, `#?#`, `#$#` are cosmetic rules; a lone `#` is a comment.
            if rest.starts_with('#')
                || rest.starts_with("@#")
                || rest.starts_with("?#")
                || rest.starts_with("$#")
            {
                return out.skip(no, "cosmetic rule".to_string());
            }
            return out.ignore();
        }
        let (allow, rule) = match text.strip_prefix("@@") {
            Some(r) => (true, r),
            None => (false, text),
        };
        if rule.contains('$') {
            return out.skip(no, format!("rule with $modifiers: {}", q(text)));
        }
        if rule.len() > 1 && rule.starts_with('/') && rule.ends_with('/') {
            return out.skip(no, format!("regex rule: {}", q(text)));
        }
        let Some(body) = rule.strip_prefix("||") else {
            return out.skip(no, format!("not a `||name^` rule: {}", q(text)));
        };
        let (name, tail) = match body.find('^') {
            Some(i) => (&body[..i], &body[i + 1..]),
            None => (body, ""),
        };
        if name.contains('/') || !(tail.is_empty() || tail == "|") {
            return out.skip(no, format!("rule with a path: {}", q(text)));
        }
        if !body.contains('^') {
            return out.skip(
                no,
                format!(
                    "rule without `^` separator matches more than a domain: {}",
                    q(text)
                ),
            );
        }
        if name.contains('*') {
            return out.skip(no, format!("wildcard pattern: {}", q(text)));
        }
        let kind = allow.then_some(ListKind::Allow);
        out.emit(no, name, kind, None, Some(MatchMode::Subtree));
    }
}

struct Dnsmasq;

impl LineParser for Dnsmasq {
    fn line(&mut self, no: u64, line: &str, out: &mut Out<'_>) {
        let text = line.trim();
        // Only a leading `#` is a comment: in `address=/d/#` it is syntax (null address).
        if text.is_empty() || text.starts_with('#') {
            return out.ignore();
        }
        let Some((key, value)) = text.split_once('=') else {
            return out.reject(no, format!("expected `option=value`, found {}", q(text)));
        };
        let key = key.trim();
        if !matches!(key, "address" | "server" | "local") {
            return out.skip(no, format!("dnsmasq option `{key}` is not a block rule"));
        }
        let Some(spec) = value.trim().strip_prefix('/') else {
            return out.skip(no, format!("`{key}` without a /domain/: {}", q(text)));
        };
        let Some((domains, target)) = spec.rsplit_once('/') else {
            return out.reject(no, format!("missing `/` after the domain: {}", q(text)));
        };
        let target = target.trim();
        match key {
            "server" if !target.is_empty() => {
                return out.skip(
                    no,
                    format!("forwards to upstream {}; not a block", q(target)),
                );
            }
            "local" if !target.is_empty() => {
                return out.reject(no, format!("`local=` takes no target: {}", q(text)));
            }
            "address"
                if !(target.is_empty() || target == "#" || target.parse::<IpAddr>().is_ok()) =>
            {
                return out.reject(no, format!("invalid address {}", q(target)));
            }
            _ => {}
        }
        if let Ok(ip) = target.parse::<IpAddr>()
            && !is_sink(&ip)
        {
            out.warn(
                no,
                format!("{target} is not a sink address; names are blocked anyway"),
            );
        }
        for name in domains.split('/') {
            if name.is_empty() || name == "#" {
                out.skip(no, format!("rule matches every domain: {}", q(text)));
                continue;
            }
            out.emit(no, name, None, None, Some(MatchMode::Subtree));
        }
    }
}

/// Strips a `#` comment that is outside double quotes.
fn strip_hash_comment(line: &str) -> &str {
    let mut in_quotes = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => in_quotes = !in_quotes,
            '#' if !in_quotes => return &line[..i],
            _ => {}
        }
    }
    line
}

struct Unbound;

impl LineParser for Unbound {
    fn line(&mut self, no: u64, line: &str, out: &mut Out<'_>) {
        let text = strip_hash_comment(line).trim();
        if text.is_empty() {
            return out.ignore();
        }
        let Some((key, value)) = text.split_once(':') else {
            return out.reject(no, format!("expected `key: value`, found {}", q(text)));
        };
        let value = value.trim();
        match key.trim() {
            // Clause headers such as `server:`.
            _ if value.is_empty() => out.ignore(),
            "local-zone" => {
                let (name, rest) = match value.strip_prefix('"') {
                    Some(v) => match v.split_once('"') {
                        Some((n, r)) => (n, r.trim()),
                        None => return out.reject(no, format!("unterminated quote: {}", q(text))),
                    },
                    None => {
                        let mut it = value.splitn(2, char::is_whitespace);
                        (it.next().unwrap_or(""), it.next().unwrap_or("").trim())
                    }
                };
                let ty = rest.split_whitespace().next().unwrap_or("");
                let kind = match ty.to_ascii_lowercase().as_str() {
                    "" => return out.reject(no, format!("local-zone without a type: {}", q(text))),
                    "transparent" | "typetransparent" | "always_transparent" | "inform"
                    | "nodefault" => Some(ListKind::Allow),
                    "static" | "deny" | "refuse" | "redirect" | "always_refuse"
                    | "always_nxdomain" | "always_null" | "always_nodata" | "always_deny"
                    | "inform_deny" | "inform_redirect" | "noview" => None,
                    other => {
                        return out.reject(no, format!("unknown local-zone type {}", q(other)));
                    }
                };
                out.emit(no, name, kind, None, Some(MatchMode::Subtree));
            }
            "local-data" | "local-data-ptr" => out.skip(
                no,
                "local-data records are not loaded; use local-zone".to_string(),
            ),
            other => out.skip(no, format!("unbound option `{other}` is not a block rule")),
        }
    }
}

/// RPZ zone-file parser; keeps the origin, the last owner and parenthesised records across lines.
#[derive(Default)]
struct Rpz {
    origin: Option<String>,
    last_owner: Option<String>,
    /// A record opened with `(` that has not been closed yet.
    pending: Option<Pending>,
}

/// The lines of an RPZ record in parentheses, kept until its `)`: at most
/// [`MAX_RECORD_LINES`] lines and [`MAX_LINE`] bytes, so an unclosed `(` costs bounded memory
/// and each line is looked at a bounded number of times.
struct Pending {
    /// Line of the `(`.
    first: u64,
    /// Open parentheses so far (outside quotes).
    depth: i32,
    /// The record's lines without comments, with their numbers.
    lines: Vec<(u64, String)>,
    /// Their total length.
    bytes: usize,
}

/// Strips a `;` comment that is outside double quotes.
fn strip_semicolon_comment(line: &str) -> &str {
    let mut in_quotes = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => in_quotes = !in_quotes,
            ';' if !in_quotes => return &line[..i],
            _ => {}
        }
    }
    line
}

/// Parentheses opened minus closed in `s`, outside double quotes.
fn paren_delta(s: &str) -> i32 {
    let mut in_quotes = false;
    s.chars().fold(0, |d, c| match c {
        '"' => {
            in_quotes = !in_quotes;
            d
        }
        '(' if !in_quotes => d + 1,
        ')' if !in_quotes => d - 1,
        _ => d,
    })
}

fn is_class(t: &str) -> bool {
    ["IN", "CH", "HS", "CS"]
        .iter()
        .any(|c| t.eq_ignore_ascii_case(c))
}

/// TTLs are digits, optionally with BIND units (`1h30m`).
fn is_ttl(t: &str) -> bool {
    t.starts_with(|c: char| c.is_ascii_digit())
        && t.chars()
            .all(|c| c.is_ascii_digit() || "smhdwSMHDW".contains(c))
}

impl LineParser for Rpz {
    fn line(&mut self, no: u64, line: &str, out: &mut Out<'_>) {
        if let Some(again) = self.step(no, line, out) {
            self.reread(again, out);
        }
    }

    fn finish(&mut self, out: &mut Out<'_>) {
        // What follows an unclosed `(` is read again as records of its own, as after an
        // overlong one; that may open another record, hence the loop.
        while let Some(p) = self.pending.take() {
            out.reject(
                p.first,
                "unclosed `(`: the record runs to the end of the file; it is dropped and the \
                 lines after it are read as records"
                    .to_string(),
            );
            self.reread(p.lines.into_iter().skip(1).collect(), out);
        }
    }
}

impl Rpz {
    /// Reads one line; returns the lines to read again when a record in parentheses grew past
    /// its bounds (they never include the line that opened it, so each re-read drops a line).
    fn step(&mut self, no: u64, line: &str, out: &mut Out<'_>) -> Option<Vec<(u64, String)>> {
        let text = strip_semicolon_comment(line);
        if let Some(p) = &mut self.pending {
            p.depth += paren_delta(text);
            p.bytes += text.len() + 1;
            p.lines.push((no, text.to_string()));
            if p.depth <= 0 {
                let p = self.pending.take()?;
                let record: Vec<&str> = p.lines.iter().map(|(_, t)| t.as_str()).collect();
                // Continuation lines are part of the record counted on its first line.
                for _ in 1..p.lines.len() {
                    out.ignore();
                }
                self.record(p.first, &record.join(" "), out);
            } else if p.lines.len() > MAX_RECORD_LINES || p.bytes > MAX_LINE {
                let p = self.pending.take()?;
                out.reject(
                    p.first,
                    format!(
                        "unclosed `(`: no `)` within {MAX_RECORD_LINES} lines or {MAX_LINE} bytes; \
                         the record is dropped and the lines after it are read as records"
                    ),
                );
                return Some(p.lines.into_iter().skip(1).collect());
            }
            return None;
        }
        if text.trim().is_empty() {
            out.ignore();
            return None;
        }
        let depth = paren_delta(text);
        if depth > 0 {
            self.pending = Some(Pending {
                first: no,
                depth,
                lines: vec![(no, text.to_string())],
                bytes: text.len(),
            });
            return None;
        }
        self.record(no, text, out);
        None
    }

    /// Reads `lines` again, and whatever their own unclosed records give back, in order.
    fn reread(&mut self, lines: Vec<(u64, String)>, out: &mut Out<'_>) {
        let mut queue = VecDeque::from(lines);
        while let Some((no, text)) = queue.pop_front() {
            if let Some(again) = self.step(no, &text, out) {
                for l in again.into_iter().rev() {
                    queue.push_front(l);
                }
            }
        }
    }
    fn record(&mut self, no: u64, text: &str, out: &mut Out<'_>) {
        let flat = text.replace(['(', ')'], " ");
        let mut toks = flat.split_whitespace().peekable();
        let Some(first) = toks.peek().copied() else {
            return out.ignore();
        };
        if first.starts_with('$') {
            toks.next();
            let arg = toks.next();
            return match (first.to_ascii_uppercase().as_str(), arg) {
                ("$TTL", _) => out.ignore(),
                ("$ORIGIN", Some(o)) => {
                    let o = o.trim_end_matches('.').to_ascii_lowercase();
                    self.origin = Some(o);
                    out.ignore()
                }
                ("$ORIGIN", None) => out.reject(no, "$ORIGIN without a name".to_string()),
                ("$INCLUDE", _) => out.skip(no, "$INCLUDE is not supported".to_string()),
                (d, _) => out.reject(no, format!("unknown directive {}", q(d))),
            };
        }
        // A record starting with whitespace belongs to the previous owner.
        let owner = if text.starts_with([' ', '\t']) {
            match &self.last_owner {
                Some(o) => o.clone(),
                None => return out.reject(no, "record without an owner name".to_string()),
            }
        } else {
            toks.next();
            first.to_string()
        };
        self.last_owner = Some(owner.clone());
        while toks.peek().is_some_and(|t| is_ttl(t) || is_class(t)) {
            toks.next();
        }
        let Some(rtype) = toks.next() else {
            return out.reject(no, format!("record without a type: {}", q(text.trim())));
        };
        let rtype = rtype.to_ascii_uppercase();
        let rdata: Vec<&str> = toks.collect();
        if rtype == "SOA" || rtype == "NS" {
            if rtype == "SOA" && self.origin.is_none() && owner.ends_with('.') && owner != "." {
                self.origin = Some(owner.trim_end_matches('.').to_ascii_lowercase());
            }
            return out.ignore();
        }
        // The trigger is the owner relative to the origin.
        let lower = owner.to_ascii_lowercase();
        let trigger = if lower == "@" {
            None
        } else if let Some(abs) = lower.strip_suffix('.') {
            match &self.origin {
                Some(o) if abs == o => None,
                Some(o) => match abs
                    .strip_suffix(o.as_str())
                    .and_then(|r| r.strip_suffix('.'))
                {
                    Some(rel) => Some(rel.to_string()),
                    None => {
                        return out.reject(
                            no,
                            format!("owner {} is outside the zone {}", q(&owner), q(o)),
                        );
                    }
                },
                None => Some(abs.to_string()),
            }
        } else {
            Some(lower)
        };
        let Some(trigger) = trigger else {
            return out.skip(
                no,
                format!("{rtype} record at the zone apex is not a policy"),
            );
        };
        let last_label = trigger.rsplit('.').next().unwrap_or("");
        let mut ip = None;
        if last_label == "rpz-ip" {
            let body = trigger.strip_suffix(".rpz-ip").unwrap_or("");
            match rpz_ip(body) {
                Ok(net) => ip = Some(net),
                Err(why) => {
                    return out.reject(no, format!("rpz-ip trigger {}: {why}", q(&trigger)));
                }
            }
        } else if last_label == "rpz-client-ip" {
            return out.skip(
                no,
                format!(
                    "rpz-client-ip triggers are not supported ({}); per-client lists are `policy.groups`",
                    q(&trigger)
                ),
            );
        } else if last_label.starts_with("rpz-") {
            return out.skip(
                no,
                format!("unsupported trigger .{last_label} ({})", q(&trigger)),
            );
        }
        let mode = if trigger.starts_with("*.") {
            MatchMode::Subtree
        } else {
            MatchMode::Exact
        };
        let (kind, action) = match rtype.as_str() {
            "CNAME" => {
                let Some(target) = rdata.first() else {
                    return out.reject(no, "CNAME without a target".to_string());
                };
                match target.to_ascii_lowercase().as_str() {
                    "." => (None, Some(Action::Nxdomain)),
                    "*." => (None, Some(Action::Nodata)),
                    "rpz-passthru." => (Some(ListKind::Allow), None),
                    "rpz-drop." => (None, Some(Action::Drop)),
                    "rpz-tcp-only." => {
                        return out.skip(no, "rpz-tcp-only is not supported".to_string());
                    }
                    // Any other target is local data (a walled garden): answer with our sinkhole.
                    _ => (None, Some(Action::Sinkhole)),
                }
            }
            "A" | "AAAA" => (None, Some(Action::Sinkhole)),
            other => {
                return out.skip(
                    no,
                    format!("unsupported record type {other} for {}", q(&trigger)),
                );
            }
        };
        match ip {
            Some(net) => out.emit_ip(no, net, kind, action),
            None => out.emit(no, &trigger, kind, action, Some(mode)),
        }
    }
}

/// The prefix of an RPZ `rpz-ip` trigger without its `.rpz-ip` label: the prefix length, then
/// the address's parts least significant first: four octets for IPv4
/// (`24.0.18.18.198` = 198.18.18.0/24), eight hex words for IPv6 where one `zz` stands for the
/// `::` run (`48.zz.1.db8.2001` = 2001:db8:1::/48).
pub fn rpz_ip(body: &str) -> Result<ipnet::IpNet, String> {
    let mut labels = body.split('.');
    let len: u8 = labels
        .next()
        .and_then(|l| l.parse().ok())
        .ok_or("no prefix length")?;
    let mut parts: Vec<&str> = labels.collect();
    parts.reverse();
    let v4 = parts.len() == 4 && parts.iter().all(|p| p.parse::<u8>().is_ok());
    let addr: IpAddr = if v4 {
        parts
            .join(".")
            .parse()
            .map_err(|_| "not an IPv4 address".to_string())?
    } else {
        let zz = parts.iter().filter(|p| **p == "zz").count();
        if zz > 1 || parts.len() > 8 || (zz == 0 && parts.len() != 8) || parts.is_empty() {
            return Err("not 4 octets or 8 IPv6 words (one `zz` for a run of zeros)".into());
        }
        let mut words = Vec::with_capacity(8);
        for p in &parts {
            if *p == "zz" {
                words.extend(std::iter::repeat_n(0u16, 9 - parts.len()));
            } else {
                let w = u16::from_str_radix(p, 16)
                    .ok()
                    .filter(|_| p.len() <= 4)
                    .ok_or_else(|| format!("{} is not an IPv6 word", q(p)))?;
                words.push(w);
            }
        }
        let w: [u16; 8] = words
            .try_into()
            .map_err(|_| "not 8 IPv6 words".to_string())?;
        IpAddr::from(w)
    };
    parse_prefix(&format!("{addr}/{len}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(format: Format, text: &str) -> Parsed {
        parse_bytes(text.as_bytes(), Path::new("t.txt"), Some(format)).unwrap()
    }

    fn names(p: &Parsed) -> Vec<&str> {
        p.entries.iter().map(|e| e.name.as_str()).collect()
    }

    #[test]
    fn plain() {
        let r = p(
            Format::Plain,
            "\u{feff}# c\r\n\r\na.test\r\n*.b.test # inline\n  c.test  \nd.test junk\n",
        );
        assert_eq!(names(&r), ["a.test", "*.b.test", "c.test"]);
        assert_eq!(r.stats.rejected, 1);
        assert_eq!(
            r.diagnostics[0].to_string(),
            "t.txt:6: unexpected text \"junk\" after name \"d.test\""
        );
    }

    #[test]
    fn hosts() {
        let r = p(
            Format::Hosts,
            "127.0.0.1 localhost\n::1 ip6-localhost ip6-loopback\n0.0.0.0\ta.test\tb.test # c\n:: c.test\n1.2.3.4 d.test\nnot-an-ip e.test\n0.0.0.0 0.0.0.0\n",
        );
        assert_eq!(names(&r), ["a.test", "b.test", "c.test", "d.test"]);
        assert_eq!(r.stats.rejected, 1);
        assert_eq!(r.stats.warnings, 1);
        assert!(
            r.entries
                .iter()
                .all(|e| e.match_mode == Some(MatchMode::Subtree))
        );
    }

    #[test]
    fn adblock() {
        let r = p(
            Format::Adblock,
            "[Adblock Plus]\n! c\n||a.test^\n@@||ok.a.test^\n||b.test^$important\n||c.test/path^\n/ads[0-9]+/\n||d.test^|\n##.banner\nexample.com\n||e.*.test^\n",
        );
        assert_eq!(names(&r), ["a.test", "ok.a.test", "d.test"]);
        assert_eq!(r.entries[1].kind, Some(ListKind::Allow));
        assert_eq!(r.stats.skipped, 6);
    }

    #[test]
    fn dnsmasq() {
        let r = p(
            Format::Dnsmasq,
            "# c\naddress=/a.test/#\naddress=/b.test/0.0.0.0\nserver=/c.test/\nlocal=/d.test/\nserver=/e.test/1.1.1.1\naddress=/f.test/g.test/\ncache-size=100\naddress=/broken\n",
        );
        assert_eq!(
            names(&r),
            ["a.test", "b.test", "c.test", "d.test", "f.test", "g.test"]
        );
        assert_eq!(r.stats.skipped, 2);
        assert_eq!(r.stats.rejected, 1);
    }

    #[test]
    fn unbound() {
        let r = p(
            Format::Unbound,
            "server:\nlocal-zone: \"a.test.\" always_null\nlocal-zone: \"b.test\" always_nxdomain # c\nlocal-zone: \"ok.test\" transparent\nlocal-zone: c.test static\nlocal-data: \"x.test A 0.0.0.0\"\nlocal-zone: \"d.test\"\n",
        );
        assert_eq!(names(&r), ["a.test.", "b.test", "ok.test", "c.test"]);
        assert_eq!(r.entries[2].kind, Some(ListKind::Allow));
        assert_eq!((r.stats.skipped, r.stats.rejected), (1, 1));
    }

    #[test]
    fn rpz() {
        let zone = "$TTL 30\n$ORIGIN rpz.example.\n@ IN SOA localhost. root.localhost. (\n 1 ; serial\n 3600 )\n NS localhost.\n\
            a.test CNAME .\n*.a.test CNAME .\nb.test 30 IN CNAME *.\nok.test CNAME rpz-passthru.\nd.test CNAME rpz-drop.\n\
            e.test.rpz.example. A 0.0.0.0\n AAAA ::\n32.1.2.18.198.rpz-ip CNAME .\nns.rpz-nsdname CNAME .\nf.test TXT \"x\"\nother.example. CNAME .\n";
        let r = p(Format::Rpz, zone);
        let got: Vec<_> = r
            .entries
            .iter()
            .map(|e| (e.name.as_str(), e.kind, e.action, e.match_mode))
            .collect();
        use Action::*;
        use MatchMode::*;
        assert_eq!(
            got,
            [
                ("a.test", None, Some(Nxdomain), Some(Exact)),
                ("*.a.test", None, Some(Nxdomain), Some(Subtree)),
                ("b.test", None, Some(Nodata), Some(Exact)),
                ("ok.test", Some(ListKind::Allow), None, Some(Exact)),
                ("d.test", None, Some(Drop), Some(Exact)),
                ("e.test", None, Some(Sinkhole), Some(Exact)),
                ("e.test", None, Some(Sinkhole), Some(Exact)),
                ("198.18.2.1/32", None, Some(Nxdomain), Some(Subtree)),
            ]
        );
        assert_eq!(r.entries[7].ip, Some("198.18.2.1/32".parse().unwrap()));
        assert_eq!(
            (r.stats.skipped, r.stats.rejected),
            (2, 1),
            "{:#?}",
            r.diagnostics
        );
    }

    #[test]
    fn rpz_ip_triggers() {
        let zone = "$ORIGIN rpz.example.\n\
            32.161.115.148.207.rpz-ip CNAME .\n\
            15.0.0.18.198.rpz-ip.rpz.example. CNAME *.\n\
            32.9.0.18.198.rpz-ip CNAME rpz-passthru.\n\
            24.0.7.18.198.rpz-ip A 198.18.0.53\n\
            128.zz.1.db8.2001.rpz-ip CNAME .\n\
            48.zz.1.db8.2001.rpz-ip CNAME .\n\
            64.0.0.0.0.7.1.db8.2001.rpz-ip CNAME .\n\
            33.1.2.18.198.rpz-ip CNAME .\n\
            24.7.7.18.198.rpz-ip CNAME .\n\
            32.1.2.198.rpz-ip CNAME .\n\
            64.zz.1.zz.2001.rpz-ip CNAME .\n\
            32.1.2.18.198.rpz-client-ip CNAME .\n";
        let r = p(Format::Rpz, zone);
        let got: Vec<_> = r
            .entries
            .iter()
            .map(|e| (e.ip.map(|n| n.to_string()), e.kind, e.action))
            .collect();
        let ip = |s: &str| Some(s.to_string());
        use Action::*;
        assert_eq!(
            got,
            [
                (ip("207.148.115.161/32"), None, Some(Nxdomain)),
                (ip("198.18.0.0/15"), None, Some(Nodata)),
                (ip("198.18.0.9/32"), Some(ListKind::Allow), None),
                (ip("198.18.7.0/24"), None, Some(Sinkhole)),
                (ip("2001:db8:1::/128"), None, Some(Nxdomain)),
                (ip("2001:db8:1::/48"), None, Some(Nxdomain)),
                (ip("2001:db8:1:7::/64"), None, Some(Nxdomain)),
            ]
        );
        let reasons: Vec<_> = r
            .diagnostics
            .iter()
            .map(|d| (d.line.unwrap(), d.reason.as_str()))
            .collect();
        assert_eq!(reasons.len(), 5, "{reasons:#?}");
        assert!(reasons[0].1.contains("/33"), "{reasons:?}");
        assert!(reasons[1].1.contains("host bits"), "{reasons:?}");
        assert!(reasons[4].1.contains("rpz-client-ip"), "{reasons:?}");
        assert_eq!(r.stats.skipped, 1);
    }

    #[test]
    fn plain_ip_lines_need_the_switch() {
        let list = "evil.test\n207.148.115.161\n198.18.0.0/15\n2001:db8::/32\n";
        let off = p(Format::Plain, list);
        assert_eq!(off.entries.len(), 1);
        assert_eq!(off.stats.rejected, 3);
        assert!(
            off.diagnostics[0].reason.contains("ips: true"),
            "{:?}",
            off.diagnostics
        );
        assert_eq!(off.diagnostics[0].line, Some(2));

        let header = p(
            Format::Plain,
            &format!("# a list\n#  Fraudwall: IPS\n{list}"),
        );
        assert_eq!(header.entries.len(), 4, "{:?}", header.diagnostics);
        let late = p(
            Format::Plain,
            &format!("evil.test\n# fraudwall: ips\n{list}"),
        );
        assert_eq!(
            late.entries.len(),
            2,
            "the header must come before the first entry"
        );
        assert!(declares_ips(
            format!("# a list\n\n#  Fraudwall: IPS\n{list}").as_bytes()
        ));
        assert!(!declares_ips(
            format!("evil.test\n# fraudwall: ips\n{list}").as_bytes()
        ));
        assert!(!declares_ips(list.as_bytes()));

        let mut entries = Vec::new();
        let junk = "198.18.0.1\n198.18.0.1/33\n198.18.0.1/24\n2001:db8::1/129\n1.2.3/8\nnot/aprefix\n::1/x\nok.test\n";
        let v = visit_with(
            junk.as_bytes(),
            Path::new("ips.txt"),
            Some(Format::Plain),
            Options { ips: true },
            &mut |e: RawEntry<'_>| {
                entries.push((e.name.to_string(), e.ip));
                Taken::Accepted
            },
        )
        .unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].1, Some("198.18.0.1/32".parse().unwrap()));
        assert_eq!(entries[1], ("ok.test".to_string(), None));
        let d: Vec<_> = v.diagnostics.iter().map(|d| format!("{d}")).collect();
        assert_eq!(d.len(), 6, "{d:#?}");
        assert!(
            d[0].starts_with("ips.txt:2: ") && d[0].contains("/33"),
            "{d:?}"
        );
        assert!(
            d[1].contains("host bits set") && d[1].contains("198.18.0.0/24"),
            "{d:?}"
        );
        assert!(d[2].contains("/129"), "{d:?}");
    }

    #[test]
    fn rpz_unclosed_paren_drops_one_record_and_reads_on() {
        // The `(` of the SOA is never closed: before, the rest of the file became one record
        // (and each line re-scanned all of it: quadratic).
        let mut zone =
            String::from("$ORIGIN rpz.example.\n@ SOA localhost. root.localhost. ( 1 3600\n");
        for i in 0..1000 {
            zone.push_str(&format!("n{i}.test CNAME .\n"));
        }
        let r = p(Format::Rpz, &zone);
        assert_eq!(r.entries.len(), 1000, "{:#?}", r.diagnostics);
        assert_eq!(r.entries[0].line, 3);
        assert_eq!(r.stats.rejected, 1);
        assert!(
            r.diagnostics[0]
                .to_string()
                .starts_with("t.txt:2: unclosed `(`: no `)` within 64 lines"),
            "{}",
            r.diagnostics[0]
        );
        // Near the end of the file, and inside quotes (which do not count).
        let r = p(
            Format::Rpz,
            "a.test TXT \"(\"\nb.test CNAME .\nc.test A ( 192.0.2.1\nd.test CNAME .\n",
        );
        assert_eq!(names(&r), ["b.test", "d.test"]);
        assert!(r.diagnostics.iter().any(|d| {
            d.to_string()
                .starts_with("t.txt:3: unclosed `(`: the record runs to the end of the file")
        }));
        // Nested openers inside an overlong record are each dropped once; the rest is read.
        let mut zone = String::new();
        for i in 0..200 {
            zone.push_str(&format!("o{i}.test A ( 192.0.2.1\n"));
        }
        zone.push_str("last.test CNAME .\n");
        let r = p(Format::Rpz, &zone);
        assert_eq!(names(&r), ["last.test"]);
        assert_eq!(r.stats.rejected, 200);
    }

    #[test]
    fn diagnostics_are_capped_and_counted() {
        let text: String = (0..5000).map(|i| format!("bad name {i}\n")).collect();
        let r = p(Format::Plain, &format!("ok.test\n{text}"));
        assert_eq!(r.diagnostics.len(), MAX_DIAGNOSTICS);
        assert_eq!(r.omitted_diagnostics, 5000 - MAX_DIAGNOSTICS as u64);
        assert_eq!(r.stats.rejected, 5000);
        assert_eq!(r.diagnostics[0].line, Some(2));
    }

    #[test]
    fn a_list_of_nothing_usable_is_an_error() {
        let page = "Service unavailable\n\nError 503, try later\n";
        let err = parse_bytes(page.as_bytes(), Path::new("feed.txt"), None).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with(
                "feed.txt: no usable entry: read as plain, 3 lines gave no entry (2 rejected, 0 skipped, 0 refused); \
                 first: line 1: unexpected text \"unavailable\" after name \"Service\"; line 3: "
            ),
            "{msg}"
        );
        assert!(matches!(err, Error::NoEntries { stats, .. } if stats.rejected == 2));
        // Only skipped rules: nothing usable either.
        let err = parse_bytes(b"||a.test^$third-party\n", Path::new("a.txt"), None).unwrap_err();
        assert!(err.to_string().contains("1 skipped"), "{err}");
        // Empty, comments and directives only: a valid empty list.
        for text in [
            "",
            "\n\n",
            "# nothing yet\n",
            "$TTL 300\n@ SOA a. b. 1 2 3 4 5\n",
        ] {
            let r = parse_bytes(text.as_bytes(), Path::new("e.txt"), None).unwrap();
            assert!(r.entries.is_empty() && r.stats.warnings == 1, "{text:?}");
        }
    }

    #[test]
    fn sniffing() {
        let cases: [(&str, Format); 7] = [
            ("# x\na.test\n", Format::Plain),
            ("# x\n0.0.0.0 a.test\n", Format::Hosts),
            ("[Adblock Plus]\n||a^\n", Format::Adblock),
            ("address=/a/#\n", Format::Dnsmasq),
            ("server:\nlocal-zone: \"a\" static\n", Format::Unbound),
            ("$TTL 30\n", Format::Rpz),
            ("a.test CNAME .\n", Format::Rpz),
        ];
        for (text, want) in cases {
            assert_eq!(
                detect_format(Path::new("x.txt"), text.as_bytes()),
                want,
                "{text:?}"
            );
        }
        assert_eq!(detect_format(Path::new("x.rpz"), b"a.test\n"), Format::Rpz);
        let bind = b"zone \"a.test\" { type master; file \"null.zone.file\"; };\n";
        for name in ["x.txt", "x.zone", "named.conf"] {
            assert_eq!(detect_format(Path::new(name), bind), Format::Bind, "{name}");
        }
    }

    #[test]
    fn bad_input() {
        let err = parse_bytes(b"a.test\n\0\x01\x02", Path::new("b.bin"), None).unwrap_err();
        assert!(
            err.to_string().contains("b.bin: byte 7: binary data"),
            "{err}"
        );
        let r = p(Format::Plain, "");
        assert_eq!(
            r.diagnostics[0].to_string(),
            "t.txt: warning: file is empty; no entries loaded"
        );
        let r = p(Format::Plain, "# only\n\n# comments\n");
        assert!(r.diagnostics[0].to_string().contains("only comments"));
        let long = format!("a.test\n{}\nb.test\n", "x".repeat(1 << 20));
        let r = p(Format::Plain, &long);
        assert_eq!(names(&r), ["a.test", "b.test"]);
        assert_eq!(
            r.diagnostics[0].to_string(),
            "t.txt:2: line is 1048576 bytes long (limit 4096)"
        );
        let r = parse_bytes(b"a.test\nb\xff.test\n", Path::new("t.txt"), None).unwrap();
        assert_eq!(
            r.diagnostics[0].to_string(),
            "t.txt:2: invalid UTF-8 at byte 2 of the line"
        );
    }
}
