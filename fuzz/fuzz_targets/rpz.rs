//! The RPZ parser on its own (its zone syntax, with `$ORIGIN`, `$TTL`, parentheses and
//! comments, is the richest of the list formats). Nothing may panic.

#![no_main]

use std::path::Path;

use fraudwall::blocklist::{Format, source};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = source::parse_bytes(data, Path::new("policy.rpz"), Some(Format::Rpz));
});
