//! Wiring: config → live blocklist, resolver, cache, engine → listeners → signals → shutdown.

use std::sync::Arc;

use anyhow::Context;
use arc_swap::ArcSwap;
use tracing::{info, warn};

use crate::{
    blocklist::Blocklist,
    config::Config,
    events::EventLog,
    lists, metrics,
    resolve::{
        Resolver,
        cache::{Cache, TtlPolicy},
    },
    server::{
        self,
        handler::{Engine, EngineConfig},
        report::{BlockReporter, LiveLookup},
    },
    sinkhole::page,
};

type PageTask = tokio::task::JoinHandle<Result<(), page::Error>>;

/// Binds and serves the warning page (and its TLS listeners when configured); the returned
/// sender stops them.
async fn start_warning_page(
    config: &Config,
    live: Arc<ArcSwap<Blocklist>>,
) -> anyhow::Result<(tokio::sync::watch::Sender<bool>, Vec<PageTask>)> {
    let cfg = Arc::new(config.warning_page.clone());
    let lookup: Arc<dyn page::BlockLookup> = Arc::new(LiveLookup(live));
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
fn tune_allocator() {
    // SAFETY: mallopt only changes glibc's allocation policy for later allocations.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

/// Runs the resolver until SIGINT or SIGTERM.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    tune_allocator();
    let live = Arc::new(ArcSwap::from_pointee(Blocklist::empty()));
    // Metrics first, so everything after can count; the handle keeps the endpoint alive.
    let _metrics = metrics::install(&config.metrics).context("starting the metrics endpoint")?;
    // The reloader sets the per-list metrics whenever it publishes a snapshot.
    let reloader = lists::Reloader::start(&config.blocklists, live.clone()).await;
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
    let (page_stop, page_tasks) = start_warning_page(&config, live.clone()).await?;
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
        Box::new(BlockReporter::new(events)),
    ));
    let workers = match config.server.udp_workers {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let mut bound = Vec::new();
    for addr in &config.listen {
        bound.push(server::bind(*addr).with_context(|| format!("binding {addr}"))?);
    }
    server::run(
        engine,
        bound,
        workers,
        config.server.tcp_timeout,
        shutdown_signal(),
    )
    .await?;
    let _ = page_stop.send(true);
    for t in page_tasks {
        let _ = t.await;
    }
    // The engine (and with it the last event sink) is gone: the writer drains and exits.
    let _ = events_writer.await;
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

/// Sets up `tracing`. `RUST_LOG` overrides `log.level`. hickory logs every request at INFO and
/// every lame or failing upstream at WARN, so its crates are held at ERROR (the server at WARN)
/// unless asked for explicitly. Colours only on a terminal.
pub fn init_logging(cfg: &crate::config::raw::LogConfig) {
    use tracing_subscriber::EnvFilter;
    let base = std::env::var("RUST_LOG").unwrap_or_else(|_| cfg.level.clone());
    let filter = if base.contains("hickory") {
        base
    } else {
        format!(
            "{base},hickory_server=warn,hickory_proto=error,hickory_resolver=error,hickory_net=error"
        )
    };
    let filter = EnvFilter::try_new(&filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = match cfg.format {
        crate::config::raw::LogFormat::Text => builder.try_init(),
        crate::config::raw::LogFormat::Json => builder.json().try_init(),
    };
}
