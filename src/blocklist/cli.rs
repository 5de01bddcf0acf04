//! Placeholder until the blocklist engine lands.
use std::{io::Write, path::Path};

use super::{Blocklist, ListSpec};

pub fn compile_cmd(_out: &Path, _specs: &[ListSpec], _w: &mut impl Write) -> std::io::Result<()> {
    unimplemented!()
}
pub fn check_cmd(_bl: &Blocklist, _names: &[String], _w: &mut impl Write) -> std::io::Result<()> {
    unimplemented!()
}
