//! fraudwall: a recursive DNS resolver that refuses to lead anyone to a fraud site.
pub mod blocklist;
pub mod events;
pub mod metrics;
pub mod sinkhole;
