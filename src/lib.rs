//! fraudwall: a recursive DNS resolver that refuses to lead anyone to a fraud site.
//!
//! # How a query flows
//! A UDP packet is read by one of several `SO_REUSEPORT` workers ([`server`]) and handed to the
//! [`server::handler::Engine`]: the query is parsed on the wire ([`server::wire`]), the client
//! is checked against `access.allow`, the name is looked up in the live [`blocklist`] (one FST
//! walk over its reversed labels), and a blocked name gets its [`sinkhole`] answer at once.
//! Anything else is answered from the wire-format [`resolve::cache`] or, on a miss, by a task
//! that asks [`resolve::Resolver`] (hickory's recursor or forwarders), stores the answer, and
//! re-checks every CNAME target against the blocklist (CNAME cloaking). TCP takes the same path
//! through hickory-server.
//!
//! # How a list flows
//! List files in `blocklists.dir` ([`lists`]) are parsed by format ([`blocklist`]), normalised,
//! compiled into one `.fst` written atomically into the state directory, memory-mapped,
//! verified, and stored into an `ArcSwap` that every query reads.
//!
//! # Where things are
//! # What a block leaves behind
//! The blocked answer points browsers at the warning page ([`sinkhole::page`]); the block is
//! queued, off the query path, to the JSON-lines [`events`] log that lets an ISP warn the person;
//! and [`metrics`] counts it for Prometheus.
//!
//! [`config`] (YAML → validated config), [`app`] (wiring, signals), [`cli`] (commands).

pub mod app;
pub mod blocklist;
pub mod cli;
pub mod config;
pub mod events;
pub mod lists;
pub mod metrics;
pub mod resolve;
pub mod server;
pub mod sinkhole;
