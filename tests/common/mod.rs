//! Shared test harness: the fake Internet (`fakenet`), a reference Unbound resolving through it
//! (`unbound`), the real fraudwall binary (`fraudwall`), a `dig` runner/parser (`dig`) and a
//! visible `skip`. Include with `mod common;`.
#![allow(dead_code, unused_imports)]

pub mod dig;
pub mod fakenet;
pub mod fraudwall;
pub mod skip;
pub mod unbound;

pub use dig::{DigResult, Ede, Record, dig};
pub use fakenet::Fakenet;
pub use fraudwall::Fraudwall;
pub use skip::skip;
pub use unbound::Unbound;

/// Knot DNS as an RPZ primary, a cutting TCP relay, Unbound with `rpz:` (tests/feeds.rs).
pub mod knot;
