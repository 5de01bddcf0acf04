//! From config to the live blocklist: which list files, compiled where, opened how.

use anyhow::Context;

use crate::{
    blocklist::{self, Blocklist, ListSpec},
    config::BlocklistsConfig,
};

/// The lists to compile: those named in the config, then every other file in `blocklists.dir`
/// with the defaults.
pub fn specs(cfg: &BlocklistsConfig) -> Vec<ListSpec> {
    let mut specs = cfg.lists.clone();
    if cfg.dir.is_dir() {
        let found = blocklist::cli::discover(&cfg.dir).unwrap_or_else(|e| {
            tracing::error!("{e}");
            Vec::new()
        });
        for mut found in found {
            if specs.iter().any(|s| s.path == found.path) {
                continue;
            }
            found.action = cfg.default_action;
            found.ede = cfg.default_ede;
            specs.push(found);
        }
    } else {
        tracing::warn!(dir = %cfg.dir.display(), "blocklists.dir does not exist: nothing is blocked");
    }
    specs
}

/// Compiles every configured and discovered list into the state directory and opens it.
pub fn load(cfg: &BlocklistsConfig) -> anyhow::Result<Blocklist> {
    let specs = specs(cfg);
    if specs.is_empty() {
        return Ok(Blocklist::empty());
    }
    std::fs::create_dir_all(&cfg.state_dir)
        .with_context(|| format!("creating {}", cfg.state_dir.display()))?;
    let out = cfg.state_dir.join("active.fst");
    let mut sink = Vec::new();
    blocklist::cli::compile_cmd(&out, &specs, &mut sink).context("compiling lists")?;
    for line in String::from_utf8_lossy(&sink).lines() {
        tracing::info!("{line}");
    }
    Blocklist::open(&out).with_context(|| format!("opening {}", out.display()))
}
