//! fraudwall: a recursive DNS resolver that refuses to lead anyone to a fraud site.
pub mod blocklist;
