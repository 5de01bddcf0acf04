//! fraudwall: a recursive DNS resolver that refuses to lead anyone to a fraud site.
//!
//! # How a query flows
//! UDP packets are read in batches (`recvmmsg`) by worker threads sharing each address's socket
//! ([`server::udp`]) and handed to the [`server::handler::Engine`]: the query is parsed on the wire ([`server::wire`]), the client
//! is checked against `access.allow`, the name is looked up in the live [`blocklist`] (one FST
//! walk over its reversed labels), and a blocked name gets its [`sinkhole`] answer at once.
//! Anything else is answered from the wire-format [`resolve::cache`] or, on a miss, by a task
//! that asks [`resolve::Resolver`] (hickory's recursor or forwarders), stores the answer, and
//! re-checks every CNAME target against the blocklist (CNAME cloaking). Answers of a batch leave
//! with one `sendmmsg`. TCP takes the same path through hickory-server. Where hickory's recursor
//! and Unbound disagree, [`resolve`] mends it (lame servers, timeouts, DNAME, NSEC wildcards,
//! CNAME loops, deep names).
//!
//! # How a list flows
//! Analysts drop files into `blocklists.dir`. The [`lists`] reloader notices (notify, a poll as
//! backstop, SIGHUP, remote fetches), waits until a file stops changing, parses it by format
//! ([`blocklist`]), normalises and compiles it into its own cached `.fst`, refuses it if it lost
//! too many entries (shrink guard), merges every source with one streaming union into a new
//! `active.fst` written beside the old one and renamed into place, memory-maps and verifies it,
//! and stores it into the `ArcSwap` that every query reads. Queries in flight keep the old one.
//!
//! # What a block leaves behind
//! The blocked answer points browsers at the warning page ([`sinkhole::page`]); the block is
//! queued, off the query path, to the JSON-lines [`events`] log that lets an ISP warn the person;
//! and [`metrics`] counts it for Prometheus.
//!
//! # Where things are
//! [`config`] (YAML → validated config), [`app`] (wiring, signals), [`cli`] (commands).

pub mod app;
pub mod atomic_file;
pub mod blocklist;
pub mod cli;
pub mod config;
pub mod dns;
pub mod events;
pub mod lists;
pub mod logging;
pub mod metrics;
#[cfg(test)]
pub(crate) mod probe;
pub mod resolve;
pub mod section;
pub mod server;
pub mod sinkhole;
