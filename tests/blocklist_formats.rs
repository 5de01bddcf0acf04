//! Every source format, through compile and open, against the fixtures in `tests/fixtures/lists`.

use std::path::{Path, PathBuf};

use fraudwall::blocklist::cli::discover;
use fraudwall::blocklist::{
    Action, Blocklist, CompileReport, Error, Format, Guard, ListKind, ListSpec, MatchMode,
    Severity, compile,
};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/lists")
        .join(name)
}

fn build(specs: &[ListSpec]) -> (tempfile::TempDir, CompileReport, Blocklist) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("lists.fst");
    let report = compile(&out, specs).unwrap();
    let bl = Blocklist::open(&out).unwrap();
    (dir, report, bl)
}

fn one(name: &str) -> (tempfile::TempDir, CompileReport, Blocklist) {
    build(&[ListSpec::from_path(&fixture(name))])
}

/// (kind, action, mode) for a query, for compact assertions.
fn v(bl: &Blocklist, q: &str) -> Option<(ListKind, Action, MatchMode)> {
    bl.lookup(q).map(|v| (v.kind, v.action, v.match_mode))
}

const BLOCK: Option<(ListKind, Action, MatchMode)> =
    Some((ListKind::Block, Action::Sinkhole, MatchMode::Subtree));

fn diags(r: &CompileReport) -> Vec<String> {
    r.lists[0]
        .diagnostics
        .iter()
        .map(|d| d.to_string())
        .collect()
}

#[test]
fn plain_list_with_tricky_lines() {
    let (_d, r, bl) = one("plain.txt");
    let l = &r.lists[0];
    assert_eq!(l.format, Format::Plain);
    for q in [
        "plain-one.test",
        "www.plain-one.test",
        "PLAIN-TWO.test.",
        "xn--bcher-plain-thb.test",
        "bücher-plain.test",
        "konto_identity.plain.test",
        "-dash-.plain.test",
        "plaintld",
        "anything.plaintld",
    ] {
        assert_eq!(v(&bl, q), BLOCK, "{q}");
    }
    let p = fixture("plain.txt").display().to_string();
    let d = diags(&r);
    let want = [
        format!("{p}:8: \"192.0.2.1\" is an IP address, not a domain name"),
        format!("{p}:9: name of 300 bytes (limit 253)"),
        format!("{p}:10: empty label in \"bad..plain.test\""),
        format!("{p}:11: warning: \"plaintld\" blocks a whole TLD"),
        format!("{p}:12: unexpected text \"words.test\" after name \"two\""),
    ];
    assert_eq!(d.len(), want.len(), "{d:#?}");
    for (got, want) in d.iter().zip(&want) {
        assert!(
            got.starts_with(want.as_str()),
            "{got}\n  does not start with\n{want}"
        );
    }
    assert_eq!((l.accepted, l.stats.rejected, l.stats.warnings), (6, 4, 1));
}

#[test]
fn exact_spec_makes_plain_entries_exact() {
    let mut spec = ListSpec::from_path(&fixture("plain.txt"));
    spec.match_mode = MatchMode::Exact;
    let (_d, _r, bl) = build(&[spec]);
    assert_eq!(
        bl.lookup("plain-one.test").unwrap().match_mode,
        MatchMode::Exact
    );
    assert_eq!(bl.lookup("www.plain-one.test"), None);
}

#[test]
fn wildcard_list() {
    let (_d, r, bl) = one("wildcard.txt");
    for q in [
        "wild-one.test",
        "a.wild-one.test",
        "wild-two.test",
        "x.y.wild-three.test",
    ] {
        assert_eq!(v(&bl, q), BLOCK, "{q}");
    }
    // Even with an exact spec, `*.` entries cover the subtree.
    assert!(diags(&r)[0].contains(":5: wildcard is only supported as a leading `*.`"));
}

#[test]
fn hosts_file() {
    let (_d, r, bl) = one("hosts.txt");
    assert_eq!(r.lists[0].format, Format::Hosts);
    for q in [
        "hosts-one.test",
        "hosts-two.test",
        "hosts-three.test",
        "hosts-four.test",
        "hosts-five.test",
        "hosts-six.test",
    ] {
        assert_eq!(v(&bl, q), BLOCK, "{q}");
    }
    for q in [
        "localhost",
        "localhost.localdomain",
        "broadcasthost",
        "ip6-localhost",
        "ip6-localnet",
    ] {
        assert_eq!(bl.lookup(q), None, "{q}");
    }
    let d = diags(&r);
    assert_eq!(d.len(), 1, "{d:#?}");
    assert!(
        d[0].ends_with(":12: expected `<address> <name>…`, found \"hosts-bad.test\""),
        "{}",
        d[0]
    );
}

#[test]
fn adblock_list() {
    let (_d, r, bl) = one("adblock.txt");
    let l = &r.lists[0];
    assert_eq!(l.format, Format::Adblock);
    assert_eq!(v(&bl, "sub.adblock-one.test"), BLOCK);
    assert_eq!(v(&bl, "adblock-two.test"), BLOCK);
    assert_eq!(v(&bl, "adblock-three.test"), BLOCK);
    assert_eq!(
        v(&bl, "x.good.adblock-one.test").unwrap().0,
        ListKind::Allow
    );
    for q in [
        "adblock-mod.test",
        "adblock-path.test",
        "adblock-regex1.test",
    ] {
        assert_eq!(bl.lookup(q), None, "{q}");
    }
    assert_eq!(l.stats.skipped, 4);
    assert!(
        l.diagnostics
            .iter()
            .all(|d| d.severity == Severity::Skipped)
    );
    assert!(diags(&r)[0].contains(":7: skipped: rule with $modifiers"));
}

#[test]
fn dnsmasq_conf() {
    let (_d, r, bl) = one("dnsmasq.conf");
    assert_eq!(r.lists[0].format, Format::Dnsmasq);
    for q in [
        "dnsmasq-one.test",
        "a.dnsmasq-two.test",
        "dnsmasq-three.test",
        "dnsmasq-four.test",
    ] {
        assert_eq!(v(&bl, q), BLOCK, "{q}");
    }
    assert_eq!(bl.lookup("dnsmasq-forward.test"), None);
    assert_eq!(r.lists[0].stats.skipped, 2);
}

#[test]
fn unbound_conf() {
    let (_d, r, bl) = one("unbound.conf");
    assert_eq!(r.lists[0].format, Format::Unbound);
    assert_eq!(v(&bl, "www.unbound-one.test"), BLOCK);
    assert_eq!(v(&bl, "unbound-two.test"), BLOCK);
    assert_eq!(v(&bl, "ok.unbound-one.test").unwrap().0, ListKind::Allow);
    assert_eq!(bl.lookup("unbound-data.test"), None);
}

#[test]
fn rpz_zone() {
    let (_d, r, bl) = one("policy.rpz");
    let l = &r.lists[0];
    assert_eq!(l.format, Format::Rpz);
    use Action::*;
    use ListKind::*;
    use MatchMode::*;
    let cases = [
        ("rpz-exact.test", Some((Block, Nxdomain, Exact))),
        ("www.rpz-exact.test", None),
        ("rpz-sub.test", Some((Block, Nxdomain, Exact))),
        ("a.b.rpz-sub.test", Some((Block, Nxdomain, Subtree))),
        ("ok.rpz-sub.test", Some((Allow, Sinkhole, Exact))),
        // passthru is exact: below it the wildcard blocks again
        ("x.ok.rpz-sub.test", Some((Block, Nxdomain, Subtree))),
        ("rpz-nodata.test", Some((Block, Nodata, Exact))),
        ("rpz-drop.test", Some((Block, Drop, Exact))),
        ("rpz-local.test", Some((Block, Sinkhole, Exact))),
        ("rpz-abs.test", Some((Block, Nxdomain, Exact))),
        ("rpz.fraudwall.test", None),
        ("evil.test", None),
    ];
    for (q, want) in cases {
        assert_eq!(v(&bl, q), want, "{q}");
    }
    assert_eq!(
        (l.stats.skipped, l.stats.rejected),
        (3, 0),
        "{:#?}",
        l.diagnostics
    );
    // Line 19's rpz-ip trigger is an address entry (response-IP triggers, issue 18).
    let ip = bl
        .lookup_ip("192.0.2.1".parse().unwrap())
        .expect("the rpz-ip entry");
    assert_eq!(
        (ip.kind, ip.action, ip.matched_labels),
        (Block, Nxdomain, 32)
    );
    assert!(
        diags(&r)
            .iter()
            .any(|d| d.contains(":21: skipped: rpz-client-ip triggers are not supported")),
        "{:#?}",
        diags(&r)
    );
}

#[test]
fn allow_list_beats_less_specific_block() {
    let (_d, _r, bl) = build(&[
        ListSpec::from_path(&fixture("plain.txt")),
        ListSpec::from_path(&fixture("hosts.txt")),
        ListSpec::from_path(&fixture("allowlist.txt")),
    ]);
    let a = bl.lookup("www.safe.plain-one.test").unwrap();
    assert_eq!((a.kind, a.list, a.matched_labels), (ListKind::Allow, 2, 3));
    assert_eq!(bl.lists()[2].name, "allowlist");
    assert!(bl.lookup("unsafe.plain-one.test").unwrap().is_block());
    assert_eq!(
        bl.lookup("good.hosts-one.test").unwrap().kind,
        ListKind::Allow
    );
}

#[test]
fn duplicate_names_keep_the_first_list() {
    let mut nx = ListSpec::from_path(&fixture("wildcard.txt"));
    nx.action = Action::Nxdomain;
    let first = ListSpec::from_path(&fixture("wildcard.txt"));
    let (_d, _r, bl) = build(&[first, nx]);
    let v = bl.lookup("wild-one.test").unwrap();
    assert_eq!((v.list, v.action), (0, Action::Sinkhole));
    assert_eq!(bl.lists()[1].action, Action::Nxdomain);
}

#[test]
fn discover_fixture_directory() {
    let specs = discover(&fixture("")).unwrap();
    let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "adblock",
            "allowlist",
            "dnsmasq",
            "hosts",
            "null-zones",
            "plain",
            "policy",
            "unbound",
            "wildcard"
        ]
    );
    assert_eq!(specs[1].kind, ListKind::Allow);
    assert!(
        specs
            .iter()
            .filter(|s| s.name != "allowlist")
            .all(|s| s.kind == ListKind::Block)
    );
    let s = ListSpec::from_path(Path::new("/x/local.allow.txt"));
    assert_eq!(
        (s.name.as_str(), s.kind, s.ede, s.category.as_str()),
        ("local.allow", ListKind::Allow, 15, "fraud")
    );
    let (_d, r, bl) = build(&specs);
    assert!(r.failed.is_empty());
    assert_eq!(bl.lists().len(), 9);
}

#[test]
fn sample_blocklists_directory() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("blocklists");
    let specs = discover(&dir).unwrap();
    let (_d, r, bl) = build(&specs);
    assert!(
        r.lists.iter().all(|l| l.diagnostics.is_empty()),
        "{:#?}",
        r.lists
    );
    assert!(bl.lookup("www.fraudwall-demo.test").unwrap().is_block());
    assert!(bl.lookup("fraudwall-demo.test").unwrap().is_block());
    assert_eq!(
        bl.lookup("safe.fraudwall-demo.test").unwrap().kind,
        ListKind::Allow
    );
    assert_eq!(bl.lookup("example.com"), None);
}

#[test]
fn bind_null_zones() {
    let (_d, r, bl) = one("null-zones.conf");
    let l = &r.lists[0];
    assert_eq!(l.format, Format::Bind);
    for q in [
        "bind-one.test",
        "www.bind-one.test",
        "bind-two.test",
        "bind-three.test",
        "bind-four.test",
        "a.b.bind-five.test",
        "bind-six.test",
    ] {
        assert_eq!(v(&bl, q), BLOCK, "{q}");
    }
    for q in [
        "bind-commented.test",
        "bind-forward.test",
        "bind-notype.test",
    ] {
        assert_eq!(bl.lookup(q), None, "{q}");
    }
    let p = fixture("null-zones.conf").display().to_string();
    assert_eq!(
        diags(&r),
        [
            format!("{p}:16: skipped: zone \"bind-forward.test\" of type `forward` does not block"),
            format!("{p}:17: zone \"bind-notype.test\" without a `type`"),
        ]
    );
    assert_eq!((l.accepted, l.stats.skipped, l.stats.rejected), (6, 1, 1));
}

/// A list with guard-rail violations (public suffixes, a protected name) and entries that are
/// fine (a fraud name, a name below a protected one).
const RISKY: &str = "evil.test\ncom\nco.uk\npaypal.com\nevil.paypal.com\n";

fn risky_list(dir: &Path, name: &str) -> ListSpec {
    let path = dir.join(name);
    std::fs::write(&path, RISKY).unwrap();
    ListSpec::from_path(&path)
}

#[test]
fn public_suffixes_and_protected_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let spec = risky_list(dir.path(), "risky.txt");
    let (_d, r, bl) = build(&[spec]);
    let l = &r.lists[0];
    assert_eq!(
        (l.accepted, l.stats.refused),
        (2, 3),
        "{:#?}",
        l.diagnostics
    );
    let p = dir.path().join("risky.txt").display().to_string();
    let d = diags(&r);
    assert!(
        d[0].starts_with(&format!(
            "{p}:2: refused: \"com\" is a public suffix (ICANN section of the Public Suffix List)"
        )),
        "{d:#?}"
    );
    assert!(d[0].ends_with("mark the list `trusted: true` in blocklists.lists"));
    assert!(d[1].starts_with(&format!("{p}:3: refused: \"co.uk\" is a public suffix")));
    assert!(
        d[2].starts_with(&format!(
            "{p}:4: refused: \"paypal.com\" is a protected name (built-in protected names:"
        )),
        "{}",
        d[2]
    );
    assert!(
        l.diagnostics
            .iter()
            .all(|d| d.severity == Severity::Refused)
    );
    for q in [
        "www.example.com",
        "example.co.uk",
        "paypal.com",
        "www.paypal.com",
    ] {
        assert_eq!(bl.lookup(q), None, "{q}");
    }
    assert_eq!(v(&bl, "evil.test"), BLOCK);
    assert_eq!(v(&bl, "x.evil.paypal.com"), BLOCK);
}

#[test]
fn trusted_lists_and_allow_entries_are_not_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = risky_list(dir.path(), "trusted.txt");
    spec.trusted = true;
    let (_d, r, bl) = build(&[spec]);
    let l = &r.lists[0];
    assert_eq!((l.accepted, l.stats.refused, l.stats.warnings), (5, 0, 3));
    assert!(diags(&r)[0].contains("loaded because the list is trusted"));
    assert_eq!(v(&bl, "www.example.com"), BLOCK);

    // Allow entries are never refused: from an allow list, or an allow rule in a block list.
    let allow = dir.path().join("allowlist.txt");
    std::fs::write(&allow, "com\npaypal.com\n").unwrap();
    let rules = dir.path().join("rules.txt");
    std::fs::write(&rules, "||evil.test^\n@@||paypal.com^\n").unwrap();
    let (_d, r, bl) = build(&[ListSpec::from_path(&allow), ListSpec::from_path(&rules)]);
    assert!(r.lists.iter().all(|l| l.stats.refused == 0));
    assert_eq!(bl.lookup("x.com").unwrap().kind, ListKind::Allow);
    assert_eq!(bl.lookup("paypal.com").unwrap().kind, ListKind::Allow);
}

#[test]
fn an_operators_protected_names_replace_the_built_in_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = risky_list(dir.path(), "risky.txt");
    let own = dir.path().join("protected.txt");
    std::fs::write(&own, "# ours\n*.evil.test\n").unwrap();
    spec.guard = Guard::load(&own).unwrap();
    let (_d, r, bl) = build(&[spec]);
    let d = diags(&r);
    let o = own.display().to_string();
    assert!(
        d[0].contains(&format!(
            ":1: refused: \"evil.test\" is a protected name ({o}:2)"
        )),
        "{d:#?}"
    );
    // paypal.com is not protected by this file; public suffixes still are refused.
    assert_eq!(v(&bl, "www.paypal.com"), BLOCK);
    assert_eq!(bl.lookup("example.com"), None);
}

#[test]
fn a_list_of_nothing_usable_fails_and_the_others_compile() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("feed.txt");
    std::fs::write(
        &page,
        "<!DOCTYPE html>\n<html><body>\n<p>Service unavailable</p>\n</body></html>\n",
    )
    .unwrap();
    let only_refused = dir.path().join("tlds.txt");
    std::fs::write(&only_refused, "com\nnet\n").unwrap();
    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, "# filled in later\n").unwrap();
    let (_d, r, bl) = build(&[
        ListSpec::from_path(&page),
        ListSpec::from_path(&only_refused),
        ListSpec::from_path(&empty),
        ListSpec::from_path(&fixture("wildcard.txt")),
    ]);
    let failed: Vec<&str> = r.failed.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(failed, ["feed", "tlds"]);
    let msg = r.failed[0].error.to_string();
    assert!(
        msg.starts_with(&format!(
            "{}: no usable entry: read as plain, 4 lines gave no entry (4 rejected, 0 skipped, 0 refused); first: line 1: ",
            page.display()
        )),
        "{msg}"
    );
    assert!(matches!(
        &r.failed[1].error,
        Error::NoEntries { stats, .. } if stats.refused == 2
    ));
    assert_eq!(bl.lists().len(), 2, "the empty list and wildcard.txt");
    assert_eq!(v(&bl, "wild-one.test"), BLOCK);
}
