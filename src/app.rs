//! Wiring: config → live blocklist, resolver, cache, engine → listeners → signals → shutdown.

use std::sync::Arc;

use anyhow::Context;
use arc_swap::ArcSwap;
use tracing::{info, warn};

use crate::{
    blocklist::Blocklist,
    config::Config,
    lists,
    resolve::{
        Resolver,
        cache::{Cache, TtlPolicy},
    },
    server::{
        self,
        handler::{Engine, EngineConfig, LogObserver},
    },
};

/// Runs the resolver until SIGINT or SIGTERM.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let live = Arc::new(ArcSwap::from_pointee(Blocklist::empty()));
    let reloader = lists::Reloader::start(&config.blocklists, live.clone()).await;
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("listening for SIGHUP")?;
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            info!("SIGHUP received: reloading lists");
            reloader.reload(lists::Trigger::Sighup);
        }
    });
    let resolver = Resolver::build(&config.resolver)
        .await
        .context("building the resolver")?;
    let c = &config.resolver.cache;
    let cache = Cache::new(
        c.max_bytes,
        TtlPolicy {
            min_ttl: c.min_ttl,
            max_ttl: c.max_ttl,
            max_negative_ttl: c.max_negative_ttl,
            stale_ttl: c.stale_ttl,
            stale_answer_ttl: c.stale_answer_ttl,
            servfail_ttl: 5,
        },
    );
    let engine = Arc::new(Engine::new(
        EngineConfig {
            access: config.access.clone(),
            sinkhole: config.sinkhole.clone(),
            doh_canary: config.blocklists.doh_canary,
            payload: config.server.edns_udp_payload,
            serve_stale: c.serve_stale,
            prefetch: c.prefetch,
            max_inflight: config.resolver.max_inflight,
        },
        live.clone(),
        cache,
        resolver,
        Box::new(LogObserver),
    ));
    let workers = match config.server.udp_workers {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let mut bound = Vec::new();
    for addr in &config.listen {
        bound.push(server::bind(*addr, workers).with_context(|| format!("binding {addr}"))?);
    }
    server::run(engine, bound, config.server.tcp_timeout, shutdown_signal()).await?;
    info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            warn!(error = %e, "cannot listen for SIGTERM");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => info!("SIGINT received"),
        _ = term.recv() => info!("SIGTERM received"),
    }
    // A second signal while draining stops at once.
    tokio::spawn(async {
        let _ = tokio::signal::ctrl_c().await;
        std::process::exit(130);
    });
}

/// Sets up `tracing`. `RUST_LOG` overrides `log.level`. hickory logs every request at INFO, so
/// its crates are held at WARN unless asked for explicitly.
pub fn init_logging(cfg: &crate::config::raw::LogConfig) {
    use tracing_subscriber::EnvFilter;
    let base = std::env::var("RUST_LOG").unwrap_or_else(|_| cfg.level.clone());
    let filter = if base.contains("hickory") {
        base
    } else {
        format!(
            "{base},hickory_server=warn,hickory_proto=warn,hickory_resolver=warn,hickory_net=warn"
        )
    };
    let filter = EnvFilter::try_new(&filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match cfg.format {
        crate::config::raw::LogFormat::Text => builder.try_init(),
        crate::config::raw::LogFormat::Json => builder.json().try_init(),
    };
}
