//! fraudwall: a recursive DNS resolver that refuses to lead anyone to a fraud site.
//!
//! # The floors
//! Modules only import from floors below their own. From the top:
//!
//! | floor | modules | what |
//! |---|---|---|
//! | command | `main.rs`, [`cli`] | the command line; every exit code |
//! | wiring | [`app`] | config → the parts → listeners → shutdown |
//! | config | [`config`] | YAML → every section validated by its owner |
//! | transports | [`server`] | UDP, TCP, DoT, DoH and the [`server::engine`] they share |
//! | services | [`resolve`], [`lists`], [`sinkhole`], [`events`], [`dnstap`], [`policy`] | asking upstream; keeping the blocklist current; the warning page; the block log; queries and answers to a dnstap collector; which lists apply to which clients (per-customer groups) |
//! | counting | [`metrics`] | metric names, hot-path counters, `/metrics` |
//! | ground | [`dns`], [`blocklist`], [`logging`] | DNS bytes (codec, answer cache, blocked answers, EDE); the compiled blocklist and its file format; `tracing` setup |
//! | footing | [`section`], [`atomic_file`], [`client`], [`process`], [`failpoint`] | the config-section contract; writing files beside and renaming them into place; who a client is (address or /64) and per-client caps; the process itself (allocator, privileges, signals, panic messages); failure injection for recovery tests (debug builds) |
//!
//! # How a query flows
//! UDP packets are read in batches (`recvmmsg`) by worker threads sharing each address's socket
//! ([`server::udp`]); TCP and DoT connections are read by [`server::tcp`], pipelined (DoT after
//! a TLS handshake with the certificate [`server::tls`] keeps current); DoH requests arrive
//! through hyper ([`server::doh`]). Behind a load balancer each datagram or connection first
//! gives up its PROXY header ([`server::proxy`]), and the client it names is the client from
//! then on. All hand the bytes to the [`server::engine::Engine`]: the
//! query is parsed on the wire ([`dns::wire`]), the client is checked against `access.allow`,
//! names under `resolver.arpa` are answered locally ([`server::ddr`]), the name is looked up in
//! the live
//! [`blocklist::SharedBlocklist`] (one FST walk over its reversed labels) with the lists of
//! the client's [`policy`] group, and a blocked name gets its answer at once
//! ([`dns::blocked`]). Anything else is answered from the wire-format [`dns::cache`] or, on a miss, carried (parsed once, with its cache key) to a task that asks
//! [`resolve::Resolver`] (our iterative [`resolve::recursor`], or forwarders), stores the
//! answer, and re-checks every CNAME target against the blocklist (CNAME cloaking) and every
//! A/AAAA address against its IP prefixes (response-IP triggers; cache hits are re-checked the
//! same way). Answers of a
//! UDP batch leave with one `sendmmsg`; TCP and DoT answers are the engine's bytes, framed; DoH
//! answers are them as an HTTP body.
//!
//! # How a list flows
//! Analysts drop files into `blocklists.dir`. The [`lists`] reloader notices (notify, a poll as
//! backstop, SIGHUP, remote fetches), scans the directory once per pass ([`lists::scan`]), waits
//! until a file stops changing (unless notify saw it closed or renamed in), parses it by format
//! and compiles it into its own cached `.fst` ([`blocklist::compile`]; lines appended to a list
//! are compiled alone), refuses it if it lost too many entries (shrink guard), and publishes the
//! per-source files at once as layers of one snapshot ([`blocklist::Blocklist::layered`]), which
//! answer as their merge will. Once changes pause it merges every source with one streaming
//! union ([`blocklist::merge`]) into a new `active.fst` written beside the old one and renamed
//! into place ([`atomic_file`]), memory-maps and verifies it, and publishes that: only the
//! reloader holds the [`blocklist::Publisher`]. Queries in flight keep the snapshot they loaded.
//!
//! An RPZ feed ([`lists::feeds`]) is a zone transferred from a vendor's primaries (AXFR, then
//! IXFR, TSIG-checked; a NOTIFY reaching the engine wakes it) and written, whole and renamed into
//! place, as an RPZ zone file in the state directory that the config names as one more list; the
//! feed then asks the reloader for a pass. What an IXFR changed goes to the reloader too
//! ([`lists::feeds::patch`]), which serves it as a small layer over the zone's compiled file,
//! hiding there the entries it replaces, until the merge compiles the zone whole.
//!
//! # What a block leaves behind
//! The blocked answer points browsers at the warning page ([`sinkhole::page`]); the block is
//! queued, off the query path, to the JSON-lines [`events`] log that lets an ISP warn the person
//! ([`server::report`]); and [`metrics`] counts it for Prometheus. With a `dnstap:` section, every query and answer
//! (a block with its dnstap `Policy`) is also queued, off the query path, to a Frame Streams
//! collector ([`dnstap`]).

pub mod app;
pub mod atomic_file;
pub mod blocklist;
pub mod cli;
pub mod client;
pub mod config;
pub mod dns;
pub mod dnstap;
pub mod events;
pub mod failpoint;
pub mod lists;
pub mod logging;
pub mod metrics;
pub mod policy;
#[cfg(test)]
pub(crate) mod probe;
pub mod process;
pub mod resolve;
pub mod section;
pub mod server;
pub mod sinkhole;
