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
    lists, metrics, process,
    resolve::Resolver,
    server::{
        self, Listeners,
        ddr::Ddr,
        engine::{Engine, Parts},
        report::BlockReporter,
        tls::Certificates,
    },
    sinkhole::page,
};

type PageTask = tokio::task::JoinHandle<Result<(), page::Error>>;

/// Binds every `listen` address of `config` (UDP and TCP on one port each), and the DoT and
/// DoH addresses. Must run inside the runtime that will serve them.
pub fn bind(config: &Config) -> anyhow::Result<Listeners> {
    let stream = |addrs: &[std::net::SocketAddr], what: &str| {
        addrs
            .iter()
            .map(|addr| {
                server::bind_stream(*addr).with_context(|| format!("binding {what} {addr}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()
    };
    Ok(Listeners {
        dns: config
            .server
            .listen
            .iter()
            .map(|addr| server::bind(*addr).with_context(|| format!("binding {addr}")))
            .collect::<anyhow::Result<_>>()?,
        dot: stream(&config.encrypted.dot_listen, "dot")?,
        doh: stream(&config.encrypted.doh_listen, "doh")?,
    })
}

/// The warning page's sockets, bound before root is given up (port 80).
struct PageListeners {
    http: Vec<tokio::net::TcpListener>,
    https: Vec<tokio::net::TcpListener>,
}

async fn bind_warning_page(config: &Config) -> anyhow::Result<PageListeners> {
    let cfg = &config.warning_page;
    let http = page::bind(cfg).await.context("starting the warning page")?;
    let https = page::bind_tls(cfg)
        .await
        .context("starting the warning page over TLS")?;
    Ok(PageListeners { http, https })
}

/// Serves the warning page on its listeners; the returned sender stops it.
fn start_warning_page(
    config: &Config,
    listeners: PageListeners,
    lookup: Arc<dyn page::BlockLookup>,
) -> (tokio::sync::watch::Sender<bool>, Vec<PageTask>) {
    let cfg = Arc::new(config.warning_page.clone());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let until_stopped = || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.changed().await;
        }
    };
    let mut tasks = Vec::new();
    if !listeners.http.is_empty() {
        let serve = page::serve(listeners.http, cfg.clone(), lookup.clone(), until_stopped());
        tasks.push(tokio::spawn(serve));
    }
    if cfg.tls.is_some() {
        let serve = page::serve_tls(listeners.https, cfg.clone(), lookup, until_stopped());
        tasks.push(tokio::spawn(serve));
    }
    (stop, tasks)
}

/// Runs the resolver on `listeners` until `shutdown` completes. SIGHUP reloads the lists and
/// the DoT/DoH certificate.
pub async fn serve(
    config: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    // Metrics first, so everything after can count; the handle keeps the endpoint alive.
    let _metrics = metrics::install(&config.metrics).context("starting the metrics endpoint")?;
    // Every socket is bound now; nothing after needs root, and files made from here on belong
    // to the user that runs the service.
    let page_listeners = bind_warning_page(&config).await?;
    // Read before privileges go: the key is often readable by root alone. Reloads read it as
    // the service user (docs/OPERATING.md, "Encrypted DNS").
    let certs = match &config.encrypted.tls {
        Some(tls) => Some(Certificates::load(tls).context("loading the DoT/DoH certificate")?),
        None => None,
    };
    process::drop_privileges(
        config.server.user.as_deref(),
        config.server.group.as_deref(),
    )?;
    // The reloader sets the per-list metrics whenever it publishes a snapshot.
    let (reloader, blocklist) = lists::Reloader::start(&config.blocklists).await?;
    let notifier = reloader.notifier();
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("listening for SIGHUP")?;
    let hup_certs = certs.clone();
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            info!("SIGHUP received: reloading lists");
            reloader.reload(lists::Trigger::Sighup);
            if let Some(c) = hup_certs.clone() {
                let _ = tokio::task::spawn_blocking(move || c.reload(true)).await;
            }
        }
    });
    let (events, events_writer) =
        EventLog::start(&config.events).context("starting the blocked-event log")?;
    let (page_stop, page_tasks) =
        start_warning_page(&config, page_listeners, Arc::new(blocklist.clone()));
    let (tap, tap_writer) = config.dnstap.as_ref().map(crate::dnstap::start).unzip();
    let resolver = Resolver::build(&config.resolver, config.cache().recursor_bytes())
        .await
        .context("building the resolver")?;
    let engine = Arc::new(
        Engine::new(Parts {
            server: config.server.clone(),
            access: config.access.clone(),
            sinkhole: config.sinkhole.clone(),
            doh_canary: config.blocklists.doh_canary,
            max_inflight: config.resolver.max_inflight,
            max_inflight_per_client: config.resolver.max_inflight_per_client,
            blocklist,
            cache: Cache::new(config.cache().clone()),
            resolver: Arc::new(resolver),
            observer: Box::new(BlockReporter::new(events)),
        })
        .with_ddr(ddr(&config, &listeners))
        .with_tap(tap)
        .with_policy(crate::policy::Policy::new(&config.policy))
        .with_notifier(notifier),
    );
    let encrypted = &config.encrypted;
    server::serve(
        engine,
        &config.server,
        encrypted,
        listeners,
        certs,
        shutdown,
    )
    .await?;
    let _ = page_stop.send(true);
    for t in page_tasks {
        let _ = t.await;
    }
    // The engine (and with it the last event sink) is gone: the writer drains and exits.
    let _ = events_writer.await;
    // Likewise the dnstap writer: it sends what is queued, then STOP, and waits for FINISH.
    if let Some(w) = tap_writer
        && tokio::time::timeout(std::time::Duration::from_secs(3), w)
            .await
            .is_err()
    {
        tracing::warn!("dnstap: the collector did not take the last messages in time");
    }
    info!("stopped");
    Ok(())
}

/// Our DDR answer; says at start why there is none when DoT or DoH listens.
fn ddr(config: &Config, listeners: &Listeners) -> Ddr {
    let e = &config.encrypted;
    let addrs = |l: &[tokio::net::TcpListener]| {
        l.iter()
            .filter_map(|l| l.local_addr().ok())
            .collect::<Vec<_>>()
    };
    let ddr = Ddr::new(e, &addrs(&listeners.doh), &addrs(&listeners.dot));
    if ddr.is_empty() && (!e.dot_listen.is_empty() || !e.doh_listen.is_empty()) {
        tracing::warn!(
            "ddr.name is not set: _dns.resolver.arpa answers NODATA, so browsers and phones \
             will not discover our DoT/DoH; set ddr.name to the name of tls.cert"
        );
    }
    ddr
}
