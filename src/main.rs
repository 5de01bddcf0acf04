use std::process::ExitCode;

use clap::Parser;

/// jemalloc: a cached name costs a quarter of the resident memory it costs under glibc's malloc
/// (fragmentation between per-thread arenas), see `process::tune_allocator`.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    fraudwall::cli::run(fraudwall::cli::Cli::parse())
}
