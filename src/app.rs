//! Wiring: config → live blocklist, resolver, cache, engine → listeners → shutdown.
//!
//! [`serve`] takes its sockets already bound and its shutdown as a future (mini-redis's
//! `run(listener, shutdown)`): the binary binds the configured addresses and passes the
//! signals; a test can bind port 0 and pass a channel.

use std::{future::Future, sync::Arc};

use anyhow::Context;
use tracing::info;

use crate::{
    config::Config,
    dns::cache::Cache,
    events::EventLog,
    lists, metrics,
    resolve::Resolver,
    server::{
        self, Bound,
        engine::{Engine, Parts},
        report::BlockReporter,
    },
    sinkhole::page,
};

type PageTask = tokio::task::JoinHandle<Result<(), page::Error>>;

/// Binds every `listen` address of `config` (UDP and TCP on one port each). Must run inside
/// the runtime that will serve them.
pub fn bind(config: &Config) -> anyhow::Result<Vec<Bound>> {
    config
        .server
        .listen
        .iter()
        .map(|addr| server::bind(*addr).with_context(|| format!("binding {addr}")))
        .collect()
}

/// Binds and serves the warning page (and its TLS listeners when configured); the returned
/// sender stops them.
async fn start_warning_page(
    config: &Config,
    lookup: Arc<dyn page::BlockLookup>,
) -> anyhow::Result<(tokio::sync::watch::Sender<bool>, Vec<PageTask>)> {
    let cfg = Arc::new(config.warning_page.clone());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let until_stopped = || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.changed().await;
        }
    };
    let mut tasks = Vec::new();
    let listeners = page::bind(&cfg)
        .await
        .context("starting the warning page")?;
    if !listeners.is_empty() {
        let serve = page::serve(listeners, cfg.clone(), lookup.clone(), until_stopped());
        tasks.push(tokio::spawn(serve));
    }
    if cfg.tls.is_some() {
        let listeners = page::bind_tls(&cfg)
            .await
            .context("starting the warning page over TLS")?;
        let serve = page::serve_tls(listeners, cfg.clone(), lookup, until_stopped());
        tasks.push(tokio::spawn(serve));
    }
    Ok((stop, tasks))
}

/// Process-wide: serves large buffers, above all those of a list pass (keys, sort records, FST
/// shards: tens of MiB for a million names), from their own mappings, which go back to the
/// kernel when freed. glibc otherwise raises its mmap threshold to the size of the largest
/// buffer freed so far, after which such buffers come from the heap of whichever thread
/// allocated them; `malloc_trim` cannot give back the free top of a thread's heap, and the shard
/// builder threads left 45-70 MiB resident after a 1 M-name compile. Setting the threshold fixes
/// it and turns that adjustment off.
pub fn tune_allocator() {
    // SAFETY: mallopt only changes glibc's allocation policy for later allocations.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

/// Runs the resolver on `listeners` until `shutdown` completes. SIGHUP reloads the lists.
pub async fn serve(
    config: Config,
    listeners: Vec<Bound>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    // Metrics first, so everything after can count; the handle keeps the endpoint alive.
    let _metrics = metrics::install(&config.metrics).context("starting the metrics endpoint")?;
    // The reloader sets the per-list metrics whenever it publishes a snapshot.
    let (reloader, blocklist) = lists::Reloader::start(&config.blocklists).await;
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("listening for SIGHUP")?;
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            info!("SIGHUP received: reloading lists");
            reloader.reload(lists::Trigger::Sighup);
        }
    });
    let (events, events_writer) =
        EventLog::start(&config.events).context("starting the blocked-event log")?;
    let (page_stop, page_tasks) = start_warning_page(&config, Arc::new(blocklist.clone())).await?;
    let resolver = Resolver::build(&config.resolver)
        .await
        .context("building the resolver")?;
    let engine = Arc::new(Engine::new(Parts {
        server: config.server.clone(),
        access: config.access.clone(),
        sinkhole: config.sinkhole.clone(),
        doh_canary: config.blocklists.doh_canary,
        max_inflight: config.resolver.max_inflight,
        blocklist,
        cache: Cache::new(config.cache().clone()),
        resolver: Arc::new(resolver),
        observer: Box::new(BlockReporter::new(events)),
    }));
    server::run(engine, &config.server, listeners, shutdown).await?;
    let _ = page_stop.send(true);
    for t in page_tasks {
        let _ = t.await;
    }
    // The engine (and with it the last event sink) is gone: the writer drains and exits.
    let _ = events_writer.await;
    info!("stopped");
    Ok(())
}

/// Completes at SIGINT or SIGTERM; a second signal while draining exits at once.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => info!("SIGINT received"),
        _ = term.recv() => info!("SIGTERM received"),
    }
    tokio::spawn(async {
        let _ = tokio::signal::ctrl_c().await;
        std::process::exit(130);
    });
}
