//! Start-up and the life of the process: config, database (migrations), policy,
//! listener (TLS unless loopback), SIGHUP reloads, SIGTERM/SIGINT shutdown.
#![forbid(unsafe_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};

use crate::config;
use crate::http::{self, AppState};
use crate::limits::inc;
use crate::service::fleet::load_policy;
use crate::service::Service;
use crate::store::Db;
use crate::webhook::Notifier;

pub struct Options {
    pub config: std::path::PathBuf,
    /// Evaluate policy hours/weekdays as if it were this time (tests only).
    pub fake_now: Option<i64>,
}

pub async fn serve(opts: Options) -> Result<(), String> {
    let cfg = config::load(&opts.config)?;
    let policy = load_policy(&cfg.policy).map_err(|e| format!("refusing to start: {e}"))?;
    let db = Db::connect(&cfg.database)
        .await
        .map_err(|e| e.to_string())?;
    let offset = match opts.fake_now {
        Some(t) => {
            tracing::warn!(fake_now = %jitsudo_core::grant::format_time(t), "policy clock is faked (--fake-now); never use this in production");
            t - jitsudo_core::grant::now()
        }
        None => 0,
    };
    let listen = cfg.listen;
    let tls = cfg.tls.clone();
    let notifier = Notifier::start(cfg.webhooks.clone());
    let service = Service::new(db, cfg, policy, offset, notifier);
    // A change of the fleet's active key is recorded once, by the first replica with
    // the new key (decided in the database).
    service
        .record_active_key()
        .await
        .map_err(|e| e.to_string())?;
    service
        .record_policy_loaded("start")
        .await
        .map_err(|e| e.to_string())?;
    let c = &service.config;
    tracing::info!(rules = service.policy().rules.len(), policy = %c.policy.display(), policy_hash = %service.loaded_policy().hash, replica = %c.replica, active_key = %c.active_key().id, database = %redact(&c.database), "starting");
    let state = Arc::new(AppState { service });
    let app = http::router(state.clone());

    let handle = axum_server::Handle::new();
    let rustls = match &tls {
        Some(t) => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            Some(
                axum_server::tls_rustls::RustlsConfig::from_pem_file(&t.cert, &t.key)
                    .await
                    .map_err(|e| {
                        format!(
                            "cannot load TLS certificate {} / key {}: {e}",
                            t.cert.display(),
                            t.key.display()
                        )
                    })?,
            )
        }
        None => None,
    };
    tokio::spawn(signals(
        state.clone(),
        handle.clone(),
        rustls.clone(),
        tls.clone(),
    ));
    tokio::spawn(housekeeping(state.clone()));
    {
        let handle = handle.clone();
        let scheme = if rustls.is_some() { "https" } else { "http" };
        tokio::spawn(async move {
            if let Some(addr) = handle.listening().await {
                tracing::info!(%addr, "listening");
                // Tests and scripts read this line to learn the port when listen uses :0.
                println!("listening on {scheme}://{addr}");
            }
        });
    }
    let service = app.into_make_service();
    let limits = state.service.config.limits;
    let cap = crate::http::listener::effective_cap(
        limits.max_connections,
        crate::http::listener::open_files_limit(),
    );
    let header_timeout = Duration::from_secs(limits.header_timeout_seconds);
    let result = match rustls {
        Some(r) => {
            let mut server = axum_server::bind_rustls(listen, r).handle(handle);
            connection_timeouts(server.http_builder(), header_timeout);
            server
                .map(|a| crate::http::listener::Capped::new(a, cap))
                .serve(service)
                .await
        }
        None => {
            let mut server = axum_server::bind(listen).handle(handle);
            connection_timeouts(server.http_builder(), header_timeout);
            server
                .map(|a| crate::http::listener::Capped::new(a, cap))
                .serve(service)
                .await
        }
    };
    result.map_err(|e| format!("cannot serve on {listen}: {e}"))?;
    state.service.store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Headers within `header_timeout` (HTTP/1, idle keep-alive connections too); HTTP/2
/// peers that stop answering pings are dropped.
fn connection_timeouts(
    b: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
    header_timeout: Duration,
) {
    b.http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_timeout);
    b.http2()
        .timer(hyper_util::rt::TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(header_timeout)
        .max_concurrent_streams(64);
}

fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://…@{}", &url[..s], &url[at + 1..]),
        _ => url.to_string(),
    }
}

async fn signals(
    state: Arc<AppState>,
    handle: axum_server::Handle,
    rustls: Option<axum_server::tls_rustls::RustlsConfig>,
    tls: Option<config::Tls>,
) {
    let (Ok(mut hup), Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::hangup()),
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    loop {
        tokio::select! {
            _ = hup.recv() => {
                reload_policy(&state.service, &state.service.config.policy).await;
                if let (Some(r), Some(t)) = (&rustls, &tls) {
                    if let Err(e) = r.reload_from_pem_file(&t.cert, &t.key).await {
                        tracing::error!(error = %e, "TLS certificate reload failed; keeping the old one");
                    }
                }
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    tracing::info!("shutting down");
    handle.graceful_shutdown(Some(Duration::from_secs(10)));
}

/// Load the policy again; an invalid file is rejected and the old policy stays. A
/// policy taken is recorded (`policy.loaded`, with its hash) in the audit trail.
pub async fn reload_policy(service: &Service, path: &Path) {
    match load_policy(path) {
        Ok(p) => {
            tracing::info!(rules = p.policy.rules.len(), policy_hash = %p.hash, "policy reloaded");
            service.set_policy(p);
            inc(&service.metrics.policy_reloads_ok);
            if let Err(e) = service.record_policy_loaded("reload").await {
                tracing::error!(error = %e, "cannot record the reloaded policy in the audit trail");
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "policy rejected; keeping the previous policy");
            inc(&service.metrics.policy_reloads_failed);
        }
    }
}

/// Every minute (or every `[recordings] keep`, if shorter, so that a short keep is
/// kept to): purge old nonces, and sweep recordings past their retention.
async fn housekeeping(state: Arc<AppState>) {
    let every = state
        .service
        .config
        .recordings_keep
        .map_or(Duration::from_secs(60), |k| k.min(Duration::from_secs(60)));
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        if let Err(e) = state.service.purge_nonces().await {
            tracing::warn!(error = %e, "cannot purge old nonces");
        }
        match state.service.sweep_recordings().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "recordings past [recordings] keep deleted"),
            Err(e) => tracing::warn!(error = %e, "cannot sweep old recordings"),
        }
        if let Err(e) = state.service.sweep_shared_state().await {
            tracing::warn!(error = %e, "cannot sweep expired web sessions and rate windows");
        }
        state
            .service
            .revocation_lists
            .purge(jitsudo_core::grant::now());
    }
}
