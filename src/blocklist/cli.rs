//! Helpers behind the `compile` and `check` subcommands.
//!
//! They print to any `Write` so tests can read the output; the binary wires them to clap.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::normalize::normalize_into;
use super::source::{self, RawEntry, Taken};
use super::{
    Action, Blocklist, CompileReport, Error, Guard, ListInfo, ListKind, ListSpec, MatchMode,
    Verdict, compile,
};

/// Diagnostics printed per list by [`compile_cmd`]; the rest are summarised.
pub const MAX_PRINTED_DIAGNOSTICS: usize = 20;

impl ListSpec {
    /// The defaults for a list file found on disk: name = file stem, format auto-detected,
    /// `Allow` when the file name starts with `allow` or contains `.allow.` (e.g. `allowlist.txt`,
    /// `local.allow.txt`), else `Block`; action sinkhole, subtree matching, category "fraud",
    /// EDE 15 (Blocked); not trusted, the built-in protected names.
    pub fn from_path(path: &Path) -> ListSpec {
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        let kind = if file_name.starts_with("allow") || file_name.contains(".allow.") {
            ListKind::Allow
        } else {
            ListKind::Block
        };
        ListSpec {
            name: path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            path: path.to_path_buf(),
            format: None,
            kind,
            action: Action::Sinkhole,
            match_mode: MatchMode::Subtree,
            category: "fraud".to_string(),
            ede: 15,
            trusted: false,
            guard: Guard::builtin(),
            ips: false,
        }
    }
}

/// Every list file in `dir` as a [`ListSpec::from_path`]: regular files only (no
/// subdirectories), not hidden, not compiled `*.fst` files, sorted by file name so that list ids
/// (and so duplicate resolution) are deterministic.
pub fn discover(dir: &Path) -> Result<Vec<ListSpec>, Error> {
    let derr = |source| Error::ReadDir {
        path: dir.to_path_buf(),
        source,
    };
    let mut paths: Vec<PathBuf> = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(derr)? {
        let entry = entry.map_err(derr)?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name.ends_with(".fst") {
            continue;
        }
        // Follows symlinks: a linked list file counts, a linked directory does not.
        if std::fs::metadata(entry.path()).is_ok_and(|m| m.is_file()) {
            paths.push(entry.path());
        }
    }
    paths.sort();
    Ok(paths.iter().map(|p| ListSpec::from_path(p)).collect())
}

/// Compiles `specs` into `out` and prints, per list, its counts and diagnostics (at most
/// [`MAX_PRINTED_DIAGNOSTICS`] each, then "… and N more"), the lists that failed, and a summary.
pub fn compile_cmd(
    out: &Path,
    specs: &[ListSpec],
    w: &mut impl Write,
) -> Result<CompileReport, Error> {
    let report = compile(out, specs)?;
    for l in &report.lists {
        let s = &l.stats;
        writeln!(
            w,
            "{} ({}, {}): {} entries, {} skipped, {} rejected, {} refused, {} warnings",
            l.name,
            l.format.as_str(),
            l.path.display(),
            l.accepted,
            s.skipped,
            s.rejected,
            s.refused,
            s.warnings
        )?;
        for d in l.diagnostics.iter().take(MAX_PRINTED_DIAGNOSTICS) {
            writeln!(w, "  {d}")?;
        }
        let total = l.diagnostics_total();
        if total > MAX_PRINTED_DIAGNOSTICS as u64 {
            writeln!(w, "  … and {} more", total - MAX_PRINTED_DIAGNOSTICS as u64)?;
        }
    }
    for f in &report.failed {
        writeln!(w, "{}: FAILED, not compiled: {}", f.name, f.error)?;
    }
    let per_name = if report.keys > 0 {
        report.bytes as f64 / report.keys as f64
    } else {
        0.0
    };
    writeln!(
        w,
        "wrote {}: {} lists, {} names, {} bytes ({per_name:.1} B/name){}",
        report.out.display(),
        report.lists.len(),
        report.keys,
        report.bytes,
        if report.failed.is_empty() {
            String::new()
        } else {
            format!(", {} lists failed", report.failed.len())
        }
    )?;
    Ok(report)
}

/// Prints, for each name, its verdict and why: the matched entry, its list, kind, action,
/// category and `file:line` (found by re-reading the source list, so the hot path stores none).
///
/// With the `specs` the lists were compiled from, it also says when a refused entry would have
/// blocked the name: which list, line and why it was refused (the guard rails of
/// [`super::guard`]). Without them (a compiled file alone) refusals cannot be known.
pub fn check_cmd(
    bl: &Blocklist,
    specs: &[ListSpec],
    names: &[String],
    w: &mut impl Write,
) -> Result<(), Error> {
    let mut sources: HashMap<u16, Option<SourceIndex>> = HashMap::new();
    let mut refusals: Vec<Option<RefusalIndex>> = Vec::new();
    refusals.resize_with(specs.len(), || None);
    let mut canon = String::new();
    for name in names {
        // An address is checked against the lists' prefixes (what answers are checked with).
        let (v, entry, mode) = if let Ok(addr) = name.parse::<std::net::IpAddr>() {
            let Some(v) = bl.lookup_ip(addr) else {
                writeln!(w, "{name}: not listed (no listed prefix covers it)")?;
                continue;
            };
            let entry = super::matcher::ip_entry(addr, v.matched_labels).to_string();
            (v, entry, "prefix")
        } else {
            if let Err(e) = normalize_into(name, &mut canon) {
                writeln!(w, "{name}: invalid name: {e}")?;
                continue;
            }
            explain_refusals(specs, &mut refusals, name, &canon, w)?;
            let Some(v) = bl.lookup(&canon) else {
                writeln!(w, "{name}: not listed")?;
                continue;
            };
            (v, v.entry_name(&canon), v.match_mode.as_str())
        };
        let verb = match v.kind {
            ListKind::Block => "BLOCKED",
            ListKind::Allow => "ALLOWED",
        };
        let Some(info) = bl.list(&v) else {
            writeln!(
                w,
                "{name}: {verb} by {entry} ({mode}) in unknown list #{}",
                v.list
            )?;
            continue;
        };
        write!(
            w,
            "{name}: {verb} by {entry} ({mode}) in list {:?} [{} list, category {}, action {}, ede {}]",
            info.name,
            info.kind.as_str(),
            info.category,
            v.action.as_str(),
            info.ede
        )?;
        let index = sources
            .entry(v.list)
            .or_insert_with(|| SourceIndex::load(info));
        match index.as_ref().and_then(|ix| ix.line_of(&entry, &v)) {
            Some(line) => match rpz_serial(&info.path) {
                // An RPZ zone (a feed's above all): which version of it blocked.
                Some((zone, serial)) => writeln!(
                    w,
                    " at {}:{line} (zone {zone} serial {serial})",
                    info.path.display()
                )?,
                None => writeln!(w, " at {}:{line}", info.path.display())?,
            },
            None => writeln!(
                w,
                " ({} no longer has this entry or cannot be read)",
                info.path.display()
            )?,
        }
    }
    Ok(())
}

/// The zone and serial of an RPZ file's SOA when it sits on one line near the top (as a feed's
/// zone file has it).
fn rpz_serial(path: &Path) -> Option<(String, u32)> {
    use std::io::BufRead;
    if !path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("rpz"))
    {
        return None;
    }
    let file = std::io::BufReader::new(std::fs::File::open(path).ok()?);
    for line in file.lines().take(20) {
        let line = line.ok()?;
        let words: Vec<&str> = line.split(';').next()?.split_whitespace().collect();
        if let Some(i) = words.iter().position(|w| w.eq_ignore_ascii_case("soa")) {
            return Some((words[0].to_string(), words.get(i + 3)?.parse().ok()?));
        }
    }
    None
}

/// Prints a line for each refused entry of `specs` that would block `canon` (the canonical
/// form of `name`); `cache` holds each spec's [`RefusalIndex`] once built.
fn explain_refusals(
    specs: &[ListSpec],
    cache: &mut [Option<RefusalIndex>],
    name: &str,
    canon: &str,
    w: &mut impl Write,
) -> Result<(), Error> {
    for (spec, slot) in specs.iter().zip(cache.iter_mut()) {
        if spec.kind == ListKind::Allow || spec.trusted {
            continue;
        }
        let index = slot.get_or_insert_with(|| RefusalIndex::load(spec));
        // The name itself (exact or subtree entries), then each ancestor (subtree entries).
        let mut at = canon;
        loop {
            let modes: &[MatchMode] = if at == canon {
                &[MatchMode::Exact, MatchMode::Subtree]
            } else {
                &[MatchMode::Subtree]
            };
            for &mode in modes {
                if let Some((line, reason)) = index.refused.get(&(at.to_string(), mode)) {
                    writeln!(
                        w,
                        "{name}: would be BLOCKED by {at} ({}) in list {:?} at {}:{line}, but that entry was refused: {reason}",
                        mode.as_str(),
                        spec.name,
                        spec.path.display()
                    )?;
                }
            }
            match at.split_once('.') {
                Some((_, parent)) => at = parent,
                None => break,
            }
        }
    }
    Ok(())
}

/// The entries of one block list that its guard refused, by (canonical name, mode): the first
/// line of each and why. Rebuilt on demand by `check` by parsing the source again, as the
/// compiler did; a list that cannot be read has none.
struct RefusalIndex {
    refused: HashMap<(String, MatchMode), (u64, String)>,
}

impl RefusalIndex {
    fn load(spec: &ListSpec) -> RefusalIndex {
        let mut refused = HashMap::new();
        let Ok(data) = source::read_list(&spec.path) else {
            return RefusalIndex { refused };
        };
        let mut canon = String::new();
        // A list of which every entry was refused is an error, but its refusals are still
        // collected: the visit reports the error only at the end.
        let _ = source::visit(&data, &spec.path, spec.format, &mut |e: RawEntry<'_>| {
            let Ok(n) = normalize_into(e.name, &mut canon) else {
                return Taken::Accepted;
            };
            if e.kind == Some(ListKind::Allow) {
                return Taken::Accepted;
            }
            let mode = if n.wildcard {
                MatchMode::Subtree
            } else {
                e.match_mode.unwrap_or(spec.match_mode)
            };
            if let Some(why) = spec.guard.refuses(&canon, mode) {
                refused
                    .entry((canon.clone(), mode))
                    .or_insert_with(|| (e.line, why.to_string()));
                return Taken::Refused(String::new());
            }
            Taken::Accepted
        });
        RefusalIndex { refused }
    }
}

/// The first line of each (name, kind, mode) in one source list, rebuilt on demand by `check`.
struct SourceIndex {
    lines: HashMap<(String, ListKind, MatchMode), u64>,
}

impl SourceIndex {
    fn load(info: &ListInfo) -> Option<SourceIndex> {
        let data = source::read_list(&info.path).ok()?;
        let mut lines = HashMap::new();
        let mut canon = String::new();
        // Same defaults as the compiler, so the key matches what was compiled. Address lines
        // are read whatever the list's `ips` said: the compiled file only holds them if allowed.
        let options = source::Options { ips: true };
        source::visit_with(
            &data,
            &info.path,
            Some(info.format),
            options,
            &mut |e: RawEntry<'_>| {
                if let Some(net) = e.ip {
                    let kind = match info.kind {
                        ListKind::Allow => ListKind::Allow,
                        ListKind::Block => e.kind.unwrap_or(ListKind::Block),
                    };
                    lines
                        .entry((net.to_string(), kind, MatchMode::Subtree))
                        .or_insert(e.line);
                    return Taken::Accepted;
                }
                let Ok(n) = normalize_into(e.name, &mut canon) else {
                    return Taken::Accepted;
                };
                let kind = match info.kind {
                    ListKind::Allow => ListKind::Allow,
                    ListKind::Block => e.kind.unwrap_or(ListKind::Block),
                };
                let mode = if n.wildcard {
                    MatchMode::Subtree
                } else {
                    e.match_mode.unwrap_or(info.match_mode)
                };
                lines.entry((canon.clone(), kind, mode)).or_insert(e.line);
                Taken::Accepted
            },
        )
        .ok()?;
        Some(SourceIndex { lines })
    }

    fn line_of(&self, entry: &str, v: &Verdict) -> Option<u64> {
        self.lines
            .get(&(entry.to_string(), v.kind, v.match_mode))
            .copied()
    }
}
