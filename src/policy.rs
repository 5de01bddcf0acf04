//! Per-customer policy: client prefixes → named groups → which lists apply, with which action.
//!
//! ```yaml
//! policy:
//!   group_only: [child-extra]          # lists that apply only to the groups that name them
//!   groups:
//!     - name: enterprise-optout
//!       clients: ["100.64.10.0/24"]
//!       lists: [anti-fraud-centre]     # only these block lists apply
//!     - name: child-protection
//!       clients: ["100.64.20.0/24", "2001:db8:20::/48"]
//!       extra_lists: [child-extra]     # every list, and this group-only one
//!       exclude_lists: [ads]           # … but not this one
//!       actions: { anti-fraud-centre: nxdomain }
//! ```
//!
//! A client belongs to the group of the longest `clients` prefix holding its address
//! (IPv4-mapped IPv6 addresses count as IPv4); a client in no prefix is in the `default`
//! group, which applies every list but the `group_only` ones, each with its own action: without
//! a `policy:` section, everyone is in it and nothing changes.
//!
//! Which lists apply to a group: a `group_only` list only where the group names it in `lists`
//! or `extra_lists`; a list in `exclude_lists` never; a block list, when the group has `lists`,
//! only if named there; every other list (allow lists included: they correct false positives
//! for everyone) does. `actions` replaces the action of a list's block entries for the group.
//! The verdict is then exactly the one a blocklist of the applied lists alone would give
//! ([`Blocklist::lookup_wire_for`]): a name in two lists is still blocked by the second when
//! the group does not apply the first.
//!
//! The cost per query: none for a name no list holds (the blocklist says so before any group is
//! looked up), and none at all without groups. For a listed name, the client's group is one
//! longest-prefix walk of a trie (`prefix-trie`, no allocation) and a look at the few names the
//! group lists; only when the list whose entry won does not apply is the name walked again.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use prefix_trie::PrefixMap;
use serde::Deserialize;

use crate::blocklist::{Action, Blocklist, ListInfo, ListKind, ListSpec, Verdict};
use crate::section::Check;

/// The group of clients in no group's prefix.
pub const DEFAULT_GROUP: &str = "default";

/// `policy:` as YAML spells it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawPolicy {
    /// Lists that apply only to the groups naming them in `lists` or `extra_lists`.
    pub group_only: Vec<String>,
    pub groups: Vec<RawGroup>,
}

/// One entry of `policy.groups`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGroup {
    pub name: String,
    /// Prefixes (`100.64.10.0/24`, `2001:db8:20::/48`) or single addresses.
    pub clients: Vec<String>,
    /// Only these block lists apply (allow lists still do).
    #[serde(default)]
    pub lists: Option<Vec<String>>,
    /// Group-only lists that apply to this group on top of every other list.
    #[serde(default)]
    pub extra_lists: Vec<String>,
    /// Lists that do not apply to this group.
    #[serde(default)]
    pub exclude_lists: Vec<String>,
    /// The action of a list's block entries for this group.
    #[serde(default)]
    pub actions: BTreeMap<String, Action>,
}

/// `policy:`, validated.
#[derive(Debug, Clone, Default)]
pub struct PolicyConfig {
    pub group_only: Vec<String>,
    pub groups: Vec<GroupConfig>,
}

/// One group, validated.
#[derive(Debug, Clone)]
pub struct GroupConfig {
    pub name: String,
    pub clients: Vec<IpNet>,
    pub lists: Option<Vec<String>>,
    pub extra_lists: Vec<String>,
    pub exclude_lists: Vec<String>,
    pub actions: Vec<(String, Action)>,
}

impl RawPolicy {
    /// Validates the section against the lists `blocklists.lists` names: a policy can only
    /// name lists the config names (lists discovered in the directory have no name until they
    /// are found).
    pub fn validate(self, lists: &[ListSpec], check: &mut Check) -> PolicyConfig {
        let known = |name: &str| lists.iter().find(|l| l.name == name);
        let unknown = |name: &str| {
            let names: Vec<&str> = lists.iter().map(|l| l.name.as_str()).collect();
            format!(
                "no list is named {name:?} in blocklists.lists (named there: {})",
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            )
        };
        for (i, name) in self.group_only.iter().enumerate() {
            if known(name).is_none() {
                check.problem(&format!("group_only[{i}]"), unknown(name));
            }
        }
        let mut seen_prefixes: Vec<(IpNet, String)> = Vec::new();
        let mut groups: Vec<GroupConfig> = Vec::new();
        for (i, g) in self.groups.into_iter().enumerate() {
            check.section(&format!("groups[{i}]"), |check| {
                let valid = !g.name.is_empty()
                    && g
                        .name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
                if !valid {
                    check.problem(
                        "name",
                        format!("{:?} is not a group name (letters, digits, - _ .)", g.name),
                    );
                } else if g.name == DEFAULT_GROUP {
                    check.problem(
                        "name",
                        "\"default\" is the group of clients in no prefix; choose another name",
                    );
                } else if groups.iter().any(|o| o.name == g.name) {
                    check.problem("name", format!("group name {:?} is used twice", g.name));
                }
                if g.clients.is_empty() {
                    check.problem("clients", "a group needs at least one prefix");
                }
                let mut clients = Vec::new();
                for (j, c) in g.clients.iter().enumerate() {
                    let key = format!("clients[{j}]");
                    match parse_prefix(c) {
                        Err(why) => check.problem(&key, why),
                        Ok(net) => {
                            if let Some((_, other)) = seen_prefixes.iter().find(|(n, _)| *n == net)
                            {
                                check.problem(
                                    &key,
                                    format!(
                                        "{net} is already a prefix of group {other:?}: a client must have one group"
                                    ),
                                );
                            } else {
                                seen_prefixes.push((net, g.name.clone()));
                            }
                            clients.push(net);
                        }
                    }
                }
                let names = |check: &mut Check, key: &str, v: &[String]| {
                    for (j, name) in v.iter().enumerate() {
                        if known(name).is_none() {
                            check.problem(&format!("{key}[{j}]"), unknown(name));
                        }
                    }
                };
                if let Some(l) = &g.lists {
                    names(check, "lists", l);
                    if l.is_empty() {
                        check.problem(
                            "lists",
                            "an empty list of lists blocks nothing; to block nothing for these clients, say so with exclude_lists",
                        );
                    }
                    if !g.extra_lists.is_empty() {
                        check.problem(
                            "extra_lists",
                            "extra_lists adds to every list; with lists (only these), name the group-only lists there",
                        );
                    }
                }
                names(check, "extra_lists", &g.extra_lists);
                for (j, name) in g.extra_lists.iter().enumerate() {
                    if known(name).is_some() && !self.group_only.contains(name) {
                        check.problem(
                            &format!("extra_lists[{j}]"),
                            format!(
                                "{name:?} is not in policy.group_only: it applies to every group already"
                            ),
                        );
                    }
                }
                names(check, "exclude_lists", &g.exclude_lists);
                let mut actions = Vec::new();
                for (name, action) in g.actions {
                    let key = format!("actions.{name}");
                    match known(&name) {
                        None => check.problem(&key, unknown(&name)),
                        Some(l) if l.kind == ListKind::Allow => check.problem(
                            &key,
                            format!("{name:?} is an allow list: it has no action to change"),
                        ),
                        Some(_) => actions.push((name, action)),
                    }
                }
                let group = GroupConfig {
                    name: g.name,
                    clients,
                    lists: g.lists,
                    extra_lists: g.extra_lists,
                    exclude_lists: g.exclude_lists,
                    actions,
                };
                for (name, _) in &group.actions {
                    let kind = known(name).map_or(ListKind::Block, |l| l.kind);
                    if !group.applies(name, kind, &self.group_only) {
                        check.problem(
                            &format!("actions.{name}"),
                            format!("{name:?} does not apply to this group"),
                        );
                    }
                }
                groups.push(group);
            });
        }
        PolicyConfig {
            group_only: self.group_only,
            groups,
        }
    }
}

/// A prefix (`10.0.0.0/8`) or one address; host bits must be zero.
fn parse_prefix(s: &str) -> Result<IpNet, String> {
    let net = match s.parse::<IpNet>() {
        Ok(n) => n,
        Err(_) => match s.parse::<IpAddr>() {
            Ok(ip) => IpNet::from(ip),
            Err(_) => {
                return Err(format!(
                    "{s:?} is not a prefix like 100.64.10.0/24 or 2001:db8:20::/48"
                ));
            }
        },
    };
    if net.trunc() != net {
        return Err(format!(
            "{s:?} has bits set after the prefix length; did you mean {}?",
            net.trunc()
        ));
    }
    Ok(net)
}

impl GroupConfig {
    /// Whether the list `name` of `kind` applies to this group (see the module doc).
    fn applies(&self, name: &str, kind: ListKind, group_only: &[String]) -> bool {
        let named = |v: &[String]| v.iter().any(|l| l == name);
        if named(group_only) {
            return self.lists.as_deref().is_some_and(named) || named(&self.extra_lists);
        }
        if named(&self.exclude_lists) {
            return false;
        }
        match (&self.lists, kind) {
            (Some(only), ListKind::Block) => named(only),
            _ => true,
        }
    }
}

/// Index of a group in [`Policy::groups`]; 0 is the default group.
pub type GroupId = u16;

/// The running policy: the groups and the prefix tries that find them.
#[derive(Debug)]
pub struct Policy {
    /// Index 0 is the default group.
    groups: Vec<GroupConfig>,
    group_only: Vec<String>,
    v4: PrefixMap<Ipv4Net, GroupId>,
    v6: PrefixMap<Ipv6Net, GroupId>,
    /// No groups and no group-only lists: every verdict is the blocklist's.
    trivial: bool,
    counters: Vec<metrics::Counter>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy::new(&PolicyConfig::default())
    }
}

impl Policy {
    /// The policy of a validated section. Registers one counter per group: call it after the
    /// metrics recorder is installed.
    pub fn new(cfg: &PolicyConfig) -> Policy {
        let mut groups = vec![GroupConfig {
            name: DEFAULT_GROUP.into(),
            clients: Vec::new(),
            lists: None,
            extra_lists: Vec::new(),
            exclude_lists: Vec::new(),
            actions: Vec::new(),
        }];
        groups.extend(cfg.groups.iter().cloned());
        let (mut v4, mut v6) = (PrefixMap::new(), PrefixMap::new());
        for (i, g) in groups.iter().enumerate().skip(1) {
            for net in &g.clients {
                match net {
                    IpNet::V4(n) => {
                        v4.insert(*n, i as GroupId);
                    }
                    IpNet::V6(n) => {
                        v6.insert(*n, i as GroupId);
                    }
                }
            }
        }
        let counters = groups
            .iter()
            .map(|g| crate::metrics::policy_group_counter(&g.name))
            .collect();
        Policy {
            trivial: cfg.groups.is_empty() && cfg.group_only.is_empty(),
            groups,
            group_only: cfg.group_only.clone(),
            v4,
            v6,
            counters,
        }
    }

    /// The group of `ip` and the prefix that put it there (`None`: the default group).
    /// Allocation-free: one walk of a prefix trie.
    #[inline]
    pub fn group_of(&self, ip: IpAddr) -> (GroupId, Option<IpNet>) {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let hit = match ip {
            IpAddr::V4(a) => self
                .v4
                .get_lpm(&Ipv4Net::from(a))
                .map(|(n, g)| (*g, IpNet::V4(*n))),
            IpAddr::V6(a) => self
                .v6
                .get_lpm(&Ipv6Net::from(a))
                .map(|(n, g)| (*g, IpNet::V6(*n))),
        };
        match hit {
            Some((g, net)) => (g, Some(net)),
            None => (0, None),
        }
    }

    /// The name of group `g`.
    pub fn group_name(&self, g: GroupId) -> &str {
        self.groups
            .get(g as usize)
            .map_or(DEFAULT_GROUP, |g| &g.name)
    }

    /// Whether list `l` applies to group `g`.
    pub fn applies(&self, g: GroupId, l: &ListInfo) -> bool {
        self.groups
            .get(g as usize)
            .is_none_or(|grp| grp.applies(&l.name, l.kind, &self.group_only))
    }

    /// The action group `g` gives a block entry of list `l` whose own action is `own`.
    pub fn action(&self, g: GroupId, l: &ListInfo, own: Action) -> Action {
        self.groups
            .get(g as usize)
            .and_then(|grp| grp.actions.iter().find(|(n, _)| *n == l.name))
            .map_or(own, |(_, a)| *a)
    }

    /// Counts a block (or `log` hit) for group `g` (`fraudwall_policy_blocked_total`).
    pub fn count(&self, g: GroupId) {
        if let Some(c) = self.counters.get(g as usize) {
            c.increment(1);
        }
    }

    /// The hot-path query for a client: the blocklist's verdict for the lists that apply to
    /// `ip`'s group, with the group's action, and the group. `None` (the name is not listed
    /// for this client) costs what [`Blocklist::lookup_wire`] costs.
    #[inline]
    pub fn verdict(&self, bl: &Blocklist, ip: IpAddr, name: &[u8]) -> Option<(Verdict, GroupId)> {
        let v = bl.lookup_wire(name)?;
        if self.trivial {
            return Some((v, 0));
        }
        self.for_group(bl, self.group_of(ip).0, name, v)
    }

    /// [`Policy::verdict`] for an address of an answer to `ip` ([`Blocklist::lookup_ip`]): the
    /// same group, lists and actions as names. Costs one branch when no list holds addresses.
    #[inline]
    pub fn ip_verdict(
        &self,
        bl: &Blocklist,
        ip: IpAddr,
        addr: IpAddr,
    ) -> Option<(Verdict, GroupId)> {
        let v = bl.lookup_ip(addr)?;
        if self.trivial {
            return Some((v, 0));
        }
        self.for_group_with(bl, self.group_of(ip).0, v, |applies| {
            bl.lookup_ip_for(addr, applies)
        })
    }

    /// [`Policy::verdict`] once the blocklist found `v` over every list.
    fn for_group(
        &self,
        bl: &Blocklist,
        g: GroupId,
        name: &[u8],
        v: Verdict,
    ) -> Option<(Verdict, GroupId)> {
        self.for_group_with(bl, g, v, |applies| bl.lookup_wire_for(name, applies))
    }

    /// The group's verdict from `v` (over every list), or from `again` over the group's lists
    /// when `v`'s list does not apply to it; then the group's action.
    fn for_group_with(
        &self,
        bl: &Blocklist,
        g: GroupId,
        v: Verdict,
        again: impl FnOnce(&dyn Fn(u16) -> bool) -> Option<Verdict>,
    ) -> Option<(Verdict, GroupId)> {
        let applies = |list: u16| {
            bl.lists()
                .get(list as usize)
                .is_none_or(|l| self.applies(g, l))
        };
        let mut v = if applies(v.list) { v } else { again(&applies)? };
        if v.kind == ListKind::Block
            && let Some(l) = bl.list(&v)
        {
            v.action = self.action(g, l, v.action);
        }
        Some((v, g))
    }
}

/// `fraudwall check --client`: for each of `names` (already canonical: lowercase ASCII), the
/// client's group and why, every entry that matches and whether its list applies, and the
/// verdict with the group's action.
impl Policy {
    pub fn explain(
        &self,
        bl: &Blocklist,
        ip: IpAddr,
        names: &[String],
        w: &mut impl std::io::Write,
    ) -> std::io::Result<()> {
        let (g, net) = self.group_of(ip);
        match net {
            Some(net) => writeln!(
                w,
                "client {ip}: group {:?} (its prefix {net} is the longest that holds {ip})",
                self.group_name(g)
            )?,
            None => writeln!(
                w,
                "client {ip}: group {DEFAULT_GROUP:?} (no group's prefix holds {ip})"
            )?,
        }
        for name in names {
            let mut wire = Vec::with_capacity(name.len() + 2);
            for label in name.trim_end_matches('.').split('.') {
                wire.push(label.len().min(63) as u8);
                wire.extend_from_slice(&label.as_bytes()[..label.len().min(63)]);
            }
            wire.push(0);
            for m in bl.matches(name) {
                let Some(l) = bl.lists().get(m.list as usize) else {
                    continue;
                };
                let entry = crate::blocklist::matcher::entry_name(name, m.matched_labels);
                let applies = if self.applies(g, l) {
                    "applies".to_string()
                } else {
                    format!("does not apply: {}", self.why_not(g, l))
                };
                writeln!(
                    w,
                    "{name}: matches {entry} ({}) in list {:?} [{} list, action {}]: {applies}",
                    m.match_mode.as_str(),
                    l.name,
                    m.kind.as_str(),
                    m.action.as_str(),
                )?;
            }
            let Some((v, _)) = bl
                .lookup_wire(&wire)
                .and_then(|v| self.for_group(bl, g, &wire, v))
            else {
                writeln!(w, "{name}: not listed for this client")?;
                continue;
            };
            let Some(l) = bl.list(&v) else {
                continue;
            };
            let entry = crate::blocklist::matcher::entry_name(name, v.matched_labels);
            match v.kind {
                ListKind::Allow => writeln!(
                    w,
                    "{name}: ALLOWED for this client by {entry} ({}) in list {:?}",
                    v.match_mode.as_str(),
                    l.name
                )?,
                ListKind::Block => {
                    let set_here = self
                        .groups
                        .get(g as usize)
                        .is_some_and(|grp| grp.actions.iter().any(|(n, _)| *n == l.name));
                    let changed = if set_here {
                        format!(" (group {:?} sets it for {:?})", self.group_name(g), l.name)
                    } else {
                        String::new()
                    };
                    writeln!(
                        w,
                        "{name}: BLOCKED for this client by {entry} ({}) in list {:?}, action {}{changed}",
                        v.match_mode.as_str(),
                        l.name,
                        v.action.as_str(),
                    )?
                }
            }
        }
        Ok(())
    }

    /// Why list `l` does not apply to group `g`.
    fn why_not(&self, g: GroupId, l: &ListInfo) -> &'static str {
        let Some(grp) = self.groups.get(g as usize) else {
            return "unknown group";
        };
        let named = |v: &[String]| v.contains(&l.name);
        if named(&self.group_only) {
            "a group-only list this group does not name"
        } else if named(&grp.exclude_lists) {
            "this group excludes it"
        } else {
            "not among this group's lists"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocklist::{Compiler, Format, MatchMode};
    use std::path::{Path, PathBuf};

    fn spec(name: &str, kind: ListKind) -> ListSpec {
        ListSpec {
            kind,
            ..ListSpec::from_path(Path::new(&format!("{name}.txt")))
        }
    }

    fn problems(yaml: &str) -> Vec<String> {
        let raw: RawPolicy = serde_saphyr::from_str(yaml).unwrap();
        let lists = [
            spec("afc", ListKind::Block),
            spec("extra", ListKind::Block),
            spec("ok", ListKind::Allow),
        ];
        let mut check = Check::new(Path::new("."));
        check.section("policy", |c| raw.validate(&lists, c));
        check
            .into_problems()
            .into_iter()
            .map(|p| format!("{}: {}", p.key, p.message))
            .collect()
    }

    #[test]
    fn bad_sections_name_their_key() {
        let p = problems(
            "group_only: [extra, nope]\ngroups:\n  - name: a\n    clients: [10.0.0.0/8, 10.1.0.0/16, \"300.1.0.0/16\", 10.1.2.3/16]\n    lists: [afc, gone]\n  - name: a\n    clients: [10.1.0.0/16]\n    extra_lists: [afc]\n    actions: { ok: nxdomain, extra: refused }\n  - name: default\n    clients: [\"::1\"]\n",
        );
        let want = [
            "policy.group_only[1]: no list is named \"nope\" in blocklists.lists (named there: afc, extra, ok)",
            "policy.groups[0].clients[2]: \"300.1.0.0/16\" is not a prefix like 100.64.10.0/24 or 2001:db8:20::/48",
            "policy.groups[0].clients[3]: \"10.1.2.3/16\" has bits set after the prefix length; did you mean 10.1.0.0/16?",
            "policy.groups[0].lists[1]: no list is named \"gone\" in blocklists.lists (named there: afc, extra, ok)",
            "policy.groups[1].name: group name \"a\" is used twice",
            "policy.groups[1].clients[0]: 10.1.0.0/16 is already a prefix of group \"a\": a client must have one group",
            "policy.groups[1].extra_lists[0]: \"afc\" is not in policy.group_only: it applies to every group already",
            "policy.groups[1].actions.ok: \"ok\" is an allow list: it has no action to change",
            "policy.groups[1].actions.extra: \"extra\" does not apply to this group",
            "policy.groups[2].name: \"default\" is the group of clients in no prefix; choose another name",
        ];
        assert_eq!(p, want);
    }

    fn policy(yaml: &str) -> Policy {
        let raw: RawPolicy = serde_saphyr::from_str(yaml).unwrap();
        let lists = [
            spec("afc", ListKind::Block),
            spec("extra", ListKind::Block),
            spec("ok", ListKind::Allow),
        ];
        let mut check = Check::new(Path::new("."));
        let cfg = raw.validate(&lists, &mut check);
        assert!(check.is_clean(), "{:?}", check.into_problems());
        Policy::new(&cfg)
    }

    #[test]
    fn the_longest_prefix_wins_and_mapped_addresses_are_ipv4() {
        let p = policy(
            "groups:\n  - name: wide\n    clients: [10.0.0.0/8, \"2001:db8::/32\"]\n  - name: narrow\n    clients: [10.1.0.0/16, 10.1.2.3]\n",
        );
        let g = |ip: &str| {
            let (g, net) = p.group_of(ip.parse().unwrap());
            (p.group_name(g).to_string(), net.map(|n| n.to_string()))
        };
        assert_eq!(g("10.2.0.1"), ("wide".into(), Some("10.0.0.0/8".into())));
        assert_eq!(g("10.1.0.1"), ("narrow".into(), Some("10.1.0.0/16".into())));
        assert_eq!(g("10.1.2.3"), ("narrow".into(), Some("10.1.2.3/32".into())));
        assert_eq!(
            g("::ffff:10.1.0.1"),
            ("narrow".into(), Some("10.1.0.0/16".into()))
        );
        assert_eq!(
            g("2001:db8:1::1"),
            ("wide".into(), Some("2001:db8::/32".into()))
        );
        assert_eq!(g("11.0.0.1"), ("default".into(), None));
    }

    /// A block or allow list as the compiler is told of it (sinkhole, subtree).
    fn info(name: &str, kind: ListKind) -> ListInfo {
        ListInfo {
            name: name.into(),
            path: PathBuf::from(name),
            kind,
            action: Action::Sinkhole,
            category: "fraud".into(),
            ede: 15,
            entries: 0,
            format: Format::Plain,
            match_mode: MatchMode::Subtree,
        }
    }

    #[test]
    fn groups_apply_their_lists_with_their_actions() {
        let mut c = Compiler::new();
        for (name, kind, names) in [
            ("afc", ListKind::Block, &["both.test", "afc.test"][..]),
            ("extra", ListKind::Block, &["both.test", "extra.test"][..]),
            ("ok", ListKind::Allow, &["ok.afc.test"][..]),
        ] {
            let id = c.add_list(info(name, kind)).unwrap();
            for n in names {
                c.insert(id, n, kind, MatchMode::Subtree, Action::Sinkhole)
                    .unwrap();
            }
        }
        let bl = Blocklist::from_bytes(c.to_bytes().unwrap()).unwrap();
        let p = policy(
            "group_only: [extra]\ngroups:\n  - name: optout\n    clients: [10.1.0.0/16]\n    exclude_lists: [afc]\n  - name: kids\n    clients: [10.2.0.0/16]\n    extra_lists: [extra]\n    actions: { afc: nxdomain }\n  - name: only-extra\n    clients: [10.3.0.0/16]\n    lists: [extra]\n",
        );
        let ask = |ip: &str, name: &str| {
            let mut w = Vec::new();
            for l in name.split('.') {
                w.push(l.len() as u8);
                w.extend_from_slice(l.as_bytes());
            }
            w.push(0);
            p.verdict(&bl, ip.parse().unwrap(), &w).map(|(v, g)| {
                format!(
                    "{} {} {} {}",
                    p.group_name(g),
                    bl.lists()[v.list as usize].name,
                    v.kind.as_str(),
                    v.action.as_str()
                )
            })
        };
        let s = |x: &str| Some(x.to_string());
        // Default: the group-only list does not apply.
        assert_eq!(ask("10.9.0.1", "afc.test"), s("default afc block sinkhole"));
        assert_eq!(ask("10.9.0.1", "extra.test"), None);
        assert_eq!(
            ask("10.9.0.1", "both.test"),
            s("default afc block sinkhole")
        );
        assert_eq!(
            ask("10.9.0.1", "ok.afc.test"),
            s("default ok allow sinkhole")
        );
        // Opted out of afc: nothing of it, and extra is group-only.
        assert_eq!(ask("10.1.0.1", "afc.test"), None);
        assert_eq!(ask("10.1.0.1", "both.test"), None);
        // Kids: afc with nxdomain, and extra too.
        assert_eq!(ask("10.2.0.1", "afc.test"), s("kids afc block nxdomain"));
        assert_eq!(
            ask("10.2.0.1", "extra.test"),
            s("kids extra block sinkhole")
        );
        assert_eq!(ask("10.2.0.1", "both.test"), s("kids afc block nxdomain"));
        // Only extra: a name in afc and extra is still blocked, by extra.
        assert_eq!(
            ask("10.3.0.1", "both.test"),
            s("only-extra extra block sinkhole")
        );
        assert_eq!(ask("10.3.0.1", "afc.test"), None);
        // The allow list applies to everyone (only-extra named block lists only).
        assert_eq!(
            ask("10.3.0.1", "ok.afc.test"),
            s("only-extra ok allow sinkhole")
        );
    }

    /// Address prefixes follow their list into the groups like names: excluded, group-only,
    /// other actions, and the re-walk when the winning prefix's list does not apply.
    #[test]
    fn groups_apply_their_lists_to_address_prefixes() {
        let mut c = Compiler::new();
        for (name, kind, nets) in [
            (
                "afc",
                ListKind::Block,
                &["198.18.6.0/24", "198.18.7.0/24"][..],
            ),
            (
                "extra",
                ListKind::Block,
                &["198.18.6.0/24", "198.18.8.0/24"][..],
            ),
            ("ok", ListKind::Allow, &["198.18.7.7/32"][..]),
        ] {
            let id = c.add_list(info(name, kind)).unwrap();
            for n in nets {
                c.insert_ip(id, n.parse().unwrap(), kind, Action::Sinkhole);
            }
        }
        let bl = Blocklist::from_bytes(c.to_bytes().unwrap()).unwrap();
        let p = policy(
            "group_only: [extra]\ngroups:\n  - name: optout\n    clients: [10.1.0.0/16]\n    exclude_lists: [afc]\n  - name: kids\n    clients: [10.2.0.0/16]\n    extra_lists: [extra]\n    actions: { afc: nxdomain }\n  - name: only-extra\n    clients: [10.3.0.0/16]\n    lists: [extra]\n",
        );
        let ask = |client: &str, addr: &str| {
            p.ip_verdict(&bl, client.parse().unwrap(), addr.parse().unwrap())
                .map(|(v, g)| {
                    format!(
                        "{} {} {} {}",
                        p.group_name(g),
                        bl.lists()[v.list as usize].name,
                        v.kind.as_str(),
                        v.action.as_str()
                    )
                })
        };
        let s = |x: &str| Some(x.to_string());
        assert_eq!(
            ask("10.9.0.1", "198.18.6.6"),
            s("default afc block sinkhole")
        );
        assert_eq!(ask("10.9.0.1", "198.18.8.1"), None);
        assert_eq!(
            ask("10.9.0.1", "198.18.7.7"),
            s("default ok allow sinkhole")
        );
        assert_eq!(ask("10.1.0.1", "198.18.6.6"), None);
        assert_eq!(ask("10.1.0.1", "198.18.7.1"), None);
        assert_eq!(ask("10.2.0.1", "198.18.7.1"), s("kids afc block nxdomain"));
        assert_eq!(
            ask("10.2.0.1", "198.18.8.1"),
            s("kids extra block sinkhole")
        );
        assert_eq!(
            ask("10.3.0.1", "198.18.6.6"),
            s("only-extra extra block sinkhole")
        );
        assert_eq!(ask("10.3.0.1", "198.18.7.1"), None);
        assert_eq!(ask("10.9.0.1", "198.18.9.1"), None);
    }
}
