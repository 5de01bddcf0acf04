use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::from_str(text, "test.yaml", Path::new("/etc/fraudwall"))
}

#[test]
fn embedded_default_is_valid() {
    let c = Config::embedded_default().unwrap();
    assert_eq!(
        c.listen,
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
