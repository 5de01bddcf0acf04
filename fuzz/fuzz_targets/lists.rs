//! Every list parser: the same bytes parsed as each format, then with the format detected from
//! the content (sniffed). Bad lines are diagnostics; nothing may panic.

#![no_main]

use std::path::Path;

use fraudwall::blocklist::{Format, source};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for format in Format::ALL {
        let _ = source::parse_bytes(data, Path::new("list.txt"), Some(format));
    }
    // No extension: the format is sniffed from the lines.
    let _ = source::parse_bytes(data, Path::new("list"), None);
});
