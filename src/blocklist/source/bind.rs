//! BIND null-zone lists: `zone "name" { type master; file "null.zone.file"; };`.
//!
//! Each `zone` statement of type `master` (or `primary`) makes the server authoritative for the
//! name and everything below it, answered from a near-empty zone file: a subtree block, whatever
//! the file is called. Statements may share a line or span several; `//`, `#` and `/* */`
//! comments are allowed anywhere. Zones of other types (`forward`, `secondary`, `hint`, …) do
//! not block and are skipped, as are other statements (`options`, `acl`, `include`, `view`).
//!
//! The tokenizer reads each byte once. Only the tokens of the current `zone` statement are kept
//! (at most [`MAX_RECORD_LINES`] of them, the lines of the statement bounded the same way), so a
//! missing `}` or `;` costs bounded memory; the parser recovers at the next `zone` keyword where
//! a zone option was expected.

use super::{LineParser, MAX_RECORD_LINES, Out, q};
use crate::blocklist::MatchMode;

/// Whether a trimmed line starts a `zone "name" …` statement (for format sniffing).
pub(super) fn starts_zone_statement(line: &str) -> bool {
    let Some(rest) = line.strip_prefix("zone") else {
        return false;
    };
    let rest_trim = rest.trim_start();
    rest_trim.len() < rest.len() && (rest_trim.starts_with('"') || rest.contains('{'))
}

/// One token of `named.conf` syntax.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    /// An unquoted word.
    Word(String),
    /// A double-quoted string, without its quotes.
    Quoted(String),
    Open,
    Close,
    Semi,
}

impl Tok {
    /// The text of a word or string.
    fn text(&self) -> Option<&str> {
        match self {
            Tok::Word(s) | Tok::Quoted(s) => Some(s),
            _ => None,
        }
    }
}

/// A statement being read.
struct Stmt {
    /// Its first line, where it is reported.
    line: u64,
    /// Its first token, lowercased (`zone`, `options`, …).
    keyword: String,
    /// Braces open.
    depth: u32,
    /// For a `zone` statement: its tokens at brace depth 0 and 1, after the keyword.
    toks: Vec<Tok>,
    /// More than [`MAX_RECORD_LINES`] tokens or lines.
    too_long: bool,
    /// The last token closed the statement's block: only `;` may follow.
    closed: bool,
    /// The last token was `{` or `;` (an option may start here).
    after_separator: bool,
}

impl Stmt {
    fn is_zone(&self) -> bool {
        self.keyword == "zone"
    }

    /// Inside a zone's block, where an option starts (after `{` or `;`).
    fn at_option_start(&self) -> bool {
        self.depth == 1 && self.after_separator
    }
}

/// The `named.conf` parser; state carried across lines: an open `/* */` comment and the current
/// statement.
#[derive(Default)]
pub(super) struct Bind {
    /// Line where an unclosed `/*` started.
    comment: Option<u64>,
    stmt: Option<Stmt>,
}

impl LineParser for Bind {
    fn line(&mut self, no: u64, line: &str, out: &mut Out<'_>) {
        let started = self.tokens(no, line, out);
        if !started {
            // Comments, blank lines and the rest of statements begun earlier.
            out.ignore();
        }
        if let Some(st) = &mut self.stmt
            && no - st.line >= MAX_RECORD_LINES as u64
            && st.is_zone()
            && !st.too_long
        {
            st.too_long = true;
        }
    }

    fn finish(&mut self, out: &mut Out<'_>) {
        if let Some(line) = self.comment.take() {
            out.warn(
                line,
                "unclosed `/*` comment runs to the end of the file".to_string(),
            );
        }
        if let Some(st) = self.stmt.take() {
            if st.closed {
                out.warn(st.line, "missing `;` after `}`".to_string());
                self.complete(st, out);
            } else {
                out.reject(
                    st.line,
                    format!(
                        "`{}` statement not closed at the end of the file (missing `}};`)",
                        st.keyword
                    ),
                );
            }
        }
    }
}

impl Bind {
    /// Splits one line into tokens and feeds them; true if a statement started on it.
    fn tokens(&mut self, no: u64, line: &str, out: &mut Out<'_>) -> bool {
        let b = line.as_bytes();
        let mut started = false;
        let mut i = 0;
        while i < b.len() {
            if self.comment.is_some() {
                match line[i..].find("*/") {
                    Some(j) => {
                        i += j + 2;
                        self.comment = None;
                        continue;
                    }
                    None => break,
                }
            }
            let tok = match b[i] {
                b' ' | b'\t' | b'\r' => {
                    i += 1;
                    continue;
                }
                b'#' => break,
                b'/' if b.get(i + 1) == Some(&b'/') => break,
                b'/' if b.get(i + 1) == Some(&b'*') => {
                    self.comment = Some(no);
                    i += 2;
                    continue;
                }
                b'{' => {
                    i += 1;
                    Tok::Open
                }
                b'}' => {
                    i += 1;
                    Tok::Close
                }
                b';' => {
                    i += 1;
                    Tok::Semi
                }
                b'"' => match line[i + 1..].find('"') {
                    Some(j) => {
                        let s = &line[i + 1..i + 1 + j];
                        i += j + 2;
                        Tok::Quoted(s.to_string())
                    }
                    None => {
                        self.broken(no, format!("unterminated quote: {}", q(&line[i..])), out);
                        return true;
                    }
                },
                _ => {
                    let start = i;
                    while i < b.len()
                        && !matches!(
                            b[i],
                            b' ' | b'\t' | b'\r' | b'{' | b'}' | b';' | b'"' | b'#'
                        )
                        && !(b[i] == b'/' && matches!(b.get(i + 1), Some(b'/' | b'*')))
                    {
                        i += 1;
                    }
                    Tok::Word(line[start..i].to_string())
                }
            };
            started |= self.token(no, tok, out);
        }
        started
    }

    /// Drops the statement being read (it is reported as broken at its first line).
    fn broken(&mut self, no: u64, reason: String, out: &mut Out<'_>) {
        let line = self.stmt.take().map_or(no, |st| st.line);
        out.reject(line, reason);
    }

    /// Feeds one token; true if it started a statement.
    fn token(&mut self, no: u64, tok: Tok, out: &mut Out<'_>) -> bool {
        let Some(st) = &mut self.stmt else {
            return self.start(no, tok, out);
        };
        if st.closed && tok != Tok::Semi {
            // `zone "a" { … } zone "b" …`: be lenient, a missing `;` must not swallow the rest.
            let st = self.stmt.take().expect("checked above");
            out.warn(st.line, "missing `;` after `}`".to_string());
            self.complete(st, out);
            return self.start(no, tok, out);
        }
        if st.is_zone() && st.at_option_start() && matches!(&tok, Tok::Word(w) if w == "zone") {
            // The previous zone lost its `};`: report it and read this one.
            let st = self.stmt.take().expect("checked above");
            out.reject(
                st.line,
                "zone statement not closed (missing `};` before the next `zone`)".to_string(),
            );
            return self.start(no, tok, out);
        }
        st.after_separator = matches!(tok, Tok::Open | Tok::Semi);
        match tok {
            Tok::Open => st.depth += 1,
            Tok::Close if st.depth == 0 => {
                let st = self.stmt.take().expect("checked above");
                out.reject(
                    st.line,
                    format!("unexpected `}}` in `{}` statement", st.keyword),
                );
                return false;
            }
            Tok::Close => {
                st.depth -= 1;
                st.closed = st.depth == 0;
            }
            Tok::Semi if st.depth == 0 => {
                let st = self.stmt.take().expect("checked above");
                self.complete(st, out);
                return false;
            }
            _ => {}
        }
        // Kept: the zone's own tokens and those of its block, not of blocks nested in it.
        let depth = if tok == Tok::Open {
            st.depth - 1
        } else {
            st.depth
        };
        if st.is_zone() && depth <= 1 {
            if st.toks.len() >= MAX_RECORD_LINES {
                st.too_long = true;
            } else {
                st.toks.push(tok);
            }
        }
        false
    }

    /// Starts a statement with `tok`; true if it did.
    fn start(&mut self, no: u64, tok: Tok, out: &mut Out<'_>) -> bool {
        let keyword = match tok {
            Tok::Semi => return false,
            Tok::Close => {
                out.reject(no, "unexpected `}`".to_string());
                return true;
            }
            Tok::Open => "{".to_string(),
            Tok::Word(w) | Tok::Quoted(w) => w.to_ascii_lowercase(),
        };
        let depth = u32::from(keyword == "{");
        self.stmt = Some(Stmt {
            line: no,
            keyword,
            depth,
            toks: Vec::new(),
            too_long: false,
            closed: false,
            after_separator: false,
        });
        true
    }

    /// Reports a whole statement: a block for a master zone, else why not.
    fn complete(&mut self, st: Stmt, out: &mut Out<'_>) {
        let no = st.line;
        match st.keyword.as_str() {
            "zone" => {}
            "view" => {
                return out.skip(
                    no,
                    "zones inside `view` statements are not read; list the zone statements on their own".to_string(),
                );
            }
            "include" => {
                return out.skip(
                    no,
                    "`include` is not followed; add the included file as a list of its own"
                        .to_string(),
                );
            }
            other => {
                return out.skip(no, format!("`{other}` statement is not a zone"));
            }
        }
        if st.too_long {
            return out.reject(
                no,
                format!("zone statement longer than {MAX_RECORD_LINES} tokens or lines"),
            );
        }
        let mut toks = st.toks.iter();
        let Some(name) = toks.next().and_then(Tok::text) else {
            return out.reject(no, "zone statement without a name".to_string());
        };
        // An optional class between the name and the block.
        let mut next = toks.next();
        if let Some(class) = next.and_then(Tok::text) {
            if !["in", "ch", "hs", "any"].contains(&class.to_ascii_lowercase().as_str()) {
                return out.reject(
                    no,
                    format!("expected `{{` after zone {}, found {}", q(name), q(class)),
                );
            }
            next = toks.next();
        }
        if next != Some(&Tok::Open) {
            return out.reject(no, format!("zone {} without a `{{ … }}` block", q(name)));
        }
        // Options: `key value… ;` up to the closing brace.
        let mut ty = None;
        let mut option: Vec<&Tok> = Vec::new();
        for t in toks {
            match t {
                Tok::Semi | Tok::Close => {
                    if let [Tok::Word(k), v, ..] = option.as_slice()
                        && k.eq_ignore_ascii_case("type")
                    {
                        ty = v.text().map(str::to_ascii_lowercase);
                    }
                    option.clear();
                }
                t => option.push(t),
            }
        }
        match ty.as_deref() {
            None => out.reject(no, format!("zone {} without a `type`", q(name))),
            Some("master" | "primary") => out.emit(no, name, None, None, Some(MatchMode::Subtree)),
            Some(other) => out.skip(
                no,
                format!("zone {} of type `{other}` does not block", q(name)),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::{Format, parse_bytes, sniff};

    fn parse(text: &str) -> super::super::Parsed {
        parse_bytes(text.as_bytes(), Path::new("named.conf"), Some(Format::Bind)).unwrap()
    }

    fn names(text: &str) -> Vec<(String, u64)> {
        parse(text)
            .entries
            .into_iter()
            .map(|e| (e.name, e.line))
            .collect()
    }

    fn diags(text: &str) -> Vec<String> {
        parse(text)
            .diagnostics
            .iter()
            .map(|d| d.to_string())
            .collect()
    }

    fn n(list: &[(&str, u64)]) -> Vec<(String, u64)> {
        list.iter().map(|(s, l)| (s.to_string(), *l)).collect()
    }

    #[test]
    fn one_statement_per_line() {
        let text = "zone \"a.test\" { type master; file \"null.zone.file\"; };\n\
                    zone \"b.test\" {type primary;file \"/etc/bind/db.empty\";};\n\
                    zone c.test IN { type master; file \"x\"; };\n";
        assert_eq!(
            names(text),
            n(&[("a.test", 1), ("b.test", 2), ("c.test", 3)])
        );
    }

    #[test]
    fn several_per_line_and_one_over_several_lines() {
        let text = "zone \"a.test\" { type master; file \"n\"; }; zone \"b.test\" { type master; file \"n\"; };\n\
                    zone \"c.test\"\n{\n  type master;\n  file \"n\";\n};\n";
        assert_eq!(
            names(text),
            n(&[("a.test", 1), ("b.test", 1), ("c.test", 2)])
        );
    }

    #[test]
    fn comments_of_every_kind() {
        let text = "// header\n# hash\n/* block\n zone \"no.test\" { type master; };\n*/\n\
                    zone \"a.test\" { /* inline */ type master; file \"n\"; }; // tail\n\
                    zone \"b.test\" { type master; # why\n file \"n\"; };\n";
        assert_eq!(names(text), n(&[("a.test", 6), ("b.test", 7)]));
        assert!(diags(text).is_empty(), "{:?}", diags(text));
    }

    #[test]
    fn other_types_and_statements_are_skipped() {
        let text = "options { directory \"/var/cache/bind\"; };\n\
                    zone \".\" { type hint; file \"root.hints\"; };\n\
                    zone \"fwd.test\" { type forward; forwarders { 192.0.2.1; }; };\n\
                    include \"/etc/bind/more.conf\";\n\
                    zone \"a.test\" { type master; also-notify { 192.0.2.2; }; file \"n\"; };\n";
        let p = parse(text);
        assert_eq!(p.entries.len(), 1);
        assert_eq!(p.entries[0].name, "a.test");
        assert_eq!(p.stats.skipped, 4, "{:#?}", p.diagnostics);
        assert!(diags(text)[1].contains(":2: skipped: zone \".\" of type `hint`"));
    }

    #[test]
    fn broken_statements_are_reported_and_the_rest_read() {
        let text = "zone \"notype.test\" { file \"n\"; };\n\
                    zone \"open.test\" { type master; file \"n\";\n\
                    zone \"after.test\" { type master; file \"n\"; }\n\
                    zone \"last.test\" { type master; file \"n\"; };\n\
                    zone \"quote.test { type master; };\n\
                    };\n";
        assert_eq!(names(text), n(&[("after.test", 3), ("last.test", 4)]));
        let d = diags(text);
        assert_eq!(
            d,
            [
                "named.conf:1: zone \"notype.test\" without a `type`",
                "named.conf:2: zone statement not closed (missing `};` before the next `zone`)",
                "named.conf:3: warning: missing `;` after `}`",
                "named.conf:5: unterminated quote: \"\\\"quote.test { type master; };\"",
                "named.conf:6: unexpected `}`",
            ]
        );
    }

    #[test]
    fn an_unclosed_statement_costs_bounded_memory() {
        let mut text = String::from("zone \"big.test\" { type master;\n");
        for i in 0..10_000 {
            text.push_str(&format!("  also-notify {{ 192.0.2.{} ; }};\n", i % 250));
        }
        text.push_str("};\nzone \"ok.test\" { type master; };\n");
        let p = parse(&text);
        assert_eq!(p.entries.len(), 1, "{:#?}", p.diagnostics);
        assert!(
            p.diagnostics[0]
                .to_string()
                .contains(":1: zone statement longer than 64 tokens or lines")
        );
    }

    #[test]
    fn sniffed() {
        for text in [
            "zone \"a.test\" { type master; file \"n\"; };\n",
            "// list\nzone \"a.test\" {\n type master;\n};\n",
            "zone a.test {\n",
        ] {
            assert_eq!(sniff(text.as_bytes()), Format::Bind, "{text}");
        }
        assert_eq!(sniff(b"zone CNAME .\n"), Format::Rpz);
        assert_eq!(sniff(b"zone.test\n"), Format::Plain);
    }
}
