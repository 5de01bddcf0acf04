//! Shared test harness: the fake Internet (`fakenet`), a reference Unbound resolving through it
//! (`unbound`), the real fraudwall binary (`fraudwall`), and a `dig` runner/parser (`dig`). Include with `mod common;`.
#![allow(dead_code, unused_imports)]

pub mod dig;
pub mod fakenet;
pub mod fraudwall;
pub mod unbound;

pub use dig::{DigResult, Ede, Record, dig};
pub use fakenet::Fakenet;
pub use fraudwall::Fraudwall;
pub use unbound::Unbound;
