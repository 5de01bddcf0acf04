use std::time::Duration;

use super::*;
use crate::blocklist::{ListKind, MatchMode};
use crate::lists::WatchMode;
use crate::resolve::{DnssecMode, Mode};

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::from_str(text, "test.yaml", Path::new("/etc/fraudwall"))
}

#[test]
fn embedded_default_is_valid() {
    let c = Config::embedded_default().unwrap();
    assert_eq!(
        c.server.listen,
        vec!["127.0.0.1:5353".parse::<SocketAddr>().unwrap()]
    );
    assert_eq!(c.resolver.mode, Mode::Recursive);
    assert_eq!(c.resolver.dnssec, DnssecMode::Validate);
    assert!(c.resolver.root_hints.is_none(), "built-in IANA hints");
    assert!(
        !c.access.allows("8.8.8.8".parse().unwrap()),
        "never an open resolver"
    );
    assert!(c.access.allows("127.0.0.1".parse().unwrap()));
}

#[test]
fn example_config_is_valid() {
    let text = include_str!("../../config/fraudwall.example.yaml");
    // The example names files relative to itself; validate without checking they exist.
    let text = text.replace("root_hints: ", "# root_hints: ");
    let text = text.replace("trust_anchor: ", "# trust_anchor: ");
    parse(&text).unwrap();
}

#[test]
fn empty_file_means_defaults() {
    let c = parse("").unwrap();
    assert_eq!(c.sinkhole.ttl, 60);
    assert_eq!(c.blocklists.dir, Path::new("/etc/fraudwall/blocklists"));
}

#[test]
fn unknown_key_is_rejected_with_line() {
    for (text, line) in [
        ("listen: [\"127.0.0.1:53\"]\nbogus: 1\n", "line 2"),
        ("resolver:\n  mode: recursive\n  flavour: x\n", "line 3"),
        ("sinkhole:\n  ipv4: 10.0.0.1\n  colour: red\n", "line 3"),
        (
            "blocklists:\n  lists:\n    - file: a.txt\n      acton: nxdomain\n",
            "line 4",
        ),
    ] {
        let e = parse(text).unwrap_err().to_string();
        assert!(e.contains(line) && e.contains("unknown field"), "{e}");
    }
}

#[test]
fn bad_values_name_key_and_line() {
    let e = parse("sinkhole:\n  ipv4: not-an-ip\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 2"), "{e}");
    let e = parse("resolver:\n  mode: sideways\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 2"), "{e}");
}

#[test]
fn every_semantic_problem_is_reported_at_once() {
    let text = "listen: []\nresolver:\n  mode: forward\n  timeout_ms: 5\nsinkhole:\n  ttl: 0\n";
    let e = parse(text).unwrap_err();
    let ConfigError::Invalid { problems, .. } = &e else {
        panic!("{e}")
    };
    let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "listen",
            "resolver.forwarders",
            "resolver.timeout_ms",
            "resolver.server_timeout_ms",
            "sinkhole.ttl"
        ]
    );
    assert_eq!(problems[2].line, Some(4));
    assert!(e.to_string().contains("line 6: sinkhole.ttl"), "{e}");
}

#[test]
fn relative_paths_resolve_against_the_config_file() {
    let text = "blocklists:\n  dir: lists\n  lists:\n    - file: fraud.txt\n      kind: allow\n      match: exact\n      ede: 17\n";
    let c = parse(text).unwrap();
    assert_eq!(c.blocklists.dir, Path::new("/etc/fraudwall/lists"));
    let l = &c.blocklists.lists[0];
    assert_eq!(l.path, Path::new("/etc/fraudwall/lists/fraud.txt"));
    assert_eq!(l.kind, ListKind::Allow);
    assert_eq!(l.match_mode, MatchMode::Exact);
    assert_eq!(l.ede, 17);
    assert_eq!(l.name, "fraud");
}

#[test]
fn bad_ede_code_is_rejected() {
    let e = parse("blocklists:\n  lists:\n    - file: a.txt\n      ede: 3\n").unwrap_err();
    assert!(e.to_string().contains("blocklists.lists[0].ede"), "{e}");
}

#[test]
fn access_checks_mapped_v4() {
    let c = parse("access:\n  allow: [10.1.0.0/16]\n").unwrap();
    assert!(c.access.allows("::ffff:10.1.2.3".parse().unwrap()));
    assert!(!c.access.allows("10.2.0.1".parse().unwrap()));
}

#[test]
fn blocklist_reload_defaults() {
    let b = parse("").unwrap().blocklists;
    assert_eq!(b.watch, WatchMode::Notify);
    assert_eq!(b.debounce, Duration::from_millis(300));
    assert_eq!(b.poll_interval, Duration::from_secs(30));
    assert_eq!(b.max_shrink, 0.5);
    assert_eq!(
        b.state_dir,
        Path::new("/etc/fraudwall/blocklists/.fraudwall")
    );
    assert!(b.remotes.is_empty());
}

#[test]
fn remote_lists() {
    let text = "blocklists:\n  watch: poll\n  lists:\n    - file: afc.txt\n      url: https://lists.example/afc.txt\n      interval: 15m\n    - file: b.txt\n      url: http://127.0.0.1:8080/b\n      allow_http: true\n      interval: 30\n    - file: c.txt\n      url: https://127.0.0.1:8080/c\n      sha256: BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD\n";
    let b = parse(text).unwrap().blocklists;
    assert_eq!(b.watch, WatchMode::Poll);
    let r: Vec<(&str, u64)> = b
        .remotes
        .iter()
        .map(|r| (r.name.as_str(), r.interval.as_secs()))
        .collect();
    assert_eq!(r, [("afc", 900), ("b", 30), ("c", 3600)]);
    assert_eq!(
        b.remotes[0].path,
        Path::new("/etc/fraudwall/blocklists/afc.txt")
    );
}

#[test]
fn bad_reload_settings_are_all_reported() {
    let text = "blocklists:\n  debounce_ms: 1\n  poll_interval_ms: 5\n  max_shrink: 1.5\n  lists:\n    - file: a.txt\n      url: ftp://x/a\n      interval: 5 parsecs\n    - file: b.txt\n      interval: 1h\n";
    let e = parse(text).unwrap_err();
    let ConfigError::Invalid { problems, .. } = &e else {
        panic!("{e}")
    };
    let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "blocklists.debounce_ms",
            "blocklists.poll_interval_ms",
            "blocklists.max_shrink",
            "blocklists.lists[0].url",
            "blocklists.lists[0].interval",
            "blocklists.lists[1].interval",
        ]
    );
    let e = parse("blocklists:\n  watch: inotify\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 2"), "{e}");
}

#[test]
fn remote_list_pins_and_plain_http() {
    let b = parse(
        "blocklists:\n  lists:\n    - file: c.txt\n      url: https://l.example/c\n      sha256: BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD\n",
    )
    .unwrap()
    .blocklists;
    assert_eq!(
        b.remotes[0].sha256.as_deref(),
        Some("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    );
    let e = parse(
        "blocklists:\n  lists:\n    - file: a.txt\n      url: http://l.example/a\n    - file: b.txt\n      url: https://l.example/b\n      sha256: abc\n    - file: c.txt\n      allow_http: true\n",
    )
    .unwrap_err();
    let ConfigError::Invalid { problems, .. } = &e else {
        panic!("{e}")
    };
    let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "blocklists.lists[0].url",
            "blocklists.lists[1].sha256",
            "blocklists.lists[2].allow_http"
        ]
    );
}

/// Values that parse but cannot work are refused with their key.
#[test]
fn values_that_cannot_work_are_refused() {
    for (text, key) in [
        (
            "server:\n  tcp_timeout_secs: 0\n",
            "server.tcp_timeout_secs",
        ),
        (
            "server:\n  tcp_max_connections: 0\n",
            "server.tcp_max_connections",
        ),
        (
            "server:\n  tcp_max_per_client: 0\n",
            "server.tcp_max_per_client",
        ),
        ("server:\n  group: nogroup\n", "server.group"),
        ("resolver:\n  max_inflight: 0\n", "resolver.max_inflight"),
        (
            "resolver:\n  cache:\n    max_mib: 18446744073709551615\n",
            "resolver.cache.max_mib",
        ),
        (
            "resolver:\n  cache:\n    max_mib: 0\n",
            "resolver.cache.max_mib",
        ),
        ("access:\n  allow: [0.0.0.0/0]\n", "access.allow"),
        ("access:\n  allow: [\"::/0\"]\n", "access.allow"),
        (
            "warning_page:\n  max_connections: 0\n",
            "warning_page.max_connections",
        ),
        (
            "warning_page:\n  reports_max_bytes: 100\n",
            "warning_page.reports_max_bytes",
        ),
    ] {
        let e = parse(text).unwrap_err();
        let ConfigError::Invalid { problems, .. } = &e else {
            panic!("{text}: {e}")
        };
        assert_eq!(problems.len(), 1, "{text}: {e}");
        assert_eq!(problems[0].key, key, "{text}: {e}");
        assert!(problems[0].line.is_some(), "{text}: {e}");
    }
    // An open resolver when it is meant.
    let c = parse("access:\n  allow: [0.0.0.0/0]\n  open_resolver: true\n").unwrap();
    assert!(c.access.allows("8.8.8.8".parse().unwrap()));
}

#[test]
fn encrypted_sections_are_checked_with_key_and_line() {
    let e = parse("dot:\n  listen: [\"127.0.0.1:853\"]\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("tls:") && e.contains("tls.cert"), "{e}");
    let e = parse("doh:\n  listen: []\n  path: dns-query\n  idle_timeout_secs: 0\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 3: doh.path"), "{e}");
    assert!(e.contains("line 4: doh.idle_timeout_secs"), "{e}");
    let e = parse("tls:\n  cert: /nonexistent/c.pem\n  key: /nonexistent/k.pem\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("line 2: tls.cert") && e.contains("line 3: tls.key"),
        "{e}"
    );
    let e = parse("doh:\n  path: /q\n  paht: /x\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 3") && e.contains("unknown field"), "{e}");
    let e = parse("ddr:\n  name: \"not a name!\"\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 2: ddr.name"), "{e}");
    let c = parse("").unwrap();
    assert!(c.encrypted.tls.is_none() && c.encrypted.dot_listen.is_empty());
    assert_eq!(c.encrypted.doh_path, "/dns-query");
}

#[test]
fn proxy_protocol_is_checked_with_key_and_line() {
    let e = parse("listen: [\"127.0.0.1:53\"]\nproxy_protocol:\n  from: [\"10.53.0.0/24\", \"10.53.0.300/24\"]\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("line 3: proxy_protocol.from") && e.contains("10.53.0.300/24"),
        "{e}"
    );
    let e = parse("proxy_protocol:\n  from: [\"::/0\"]\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 2: proxy_protocol.from"), "{e}");
    let e = parse("proxy_protocol:\n  frm: []\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 2") && e.contains("unknown field"), "{e}");
    assert!(!parse("").unwrap().server.proxy.is_on());
    let c = parse("proxy_protocol:\n  from: [\"10.53.0.0/24\", \"::1\"]\n").unwrap();
    assert!(c.server.proxy.trusts("::1".parse().unwrap()));
}

/// A problem in the second item of a sequence names that item's line, not the first item's.
#[test]
fn problems_in_sequence_items_name_the_items_line() {
    let text = "blocklists:\n  dir: lists\n  lists:\n    - file: a.txt\n    - file: b.txt\npolicy:\n  groups:\n    - name: one\n      clients: [10.0.0.0/8]\n      lists: [a]\n    - name: two\n      clients: [10.0.0.0/8]\n      lists: [a]\n";
    let e = Config::from_str(text, "t", Path::new("/")).unwrap_err();
    let ConfigError::Invalid { problems, .. } = e else {
        panic!("{e}")
    };
    let p: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert_eq!(
        p,
        [
            "line 12: policy.groups[1].clients[0]: 10.0.0.0/8 is already a prefix of group \"one\": a client must have one group"
        ]
    );
}
