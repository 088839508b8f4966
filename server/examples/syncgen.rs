//! Sync load driver for `jitsudod` (used by benches/sync.sh): enrolls `--hosts` hosts,
//! gives `--revocations` of them one auto-approved grant each and revokes it, then has
//! `--clients` threads send `--syncs` host syncs, round robin over the hosts, exactly
//! as `jitsudo --sync` signs them (same envelope code, `host_revocations`), and a
//! shorter run of syncs as older hosts send them (the fleet's list). Reports syncs per
//! second, latency percentiles and response sizes as JSON lines on stdout.
//!
//! ```text
//! syncgen --url http://127.0.0.1:8443 --admin-token jt_… --hosts 10000 --revocations 10000
//! ```
//!
//! Latency is one sync's wall time as its client sees it: sign the envelope, POST, read
//! the whole answer and parse it. The client does not verify the signatures (the host's
//! cost, not the service's).
#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use jitsudo_core::grant::keys::SecretKey;
use jitsudo_core::wire::{self, NewRequest, RequestStatus, Signed, SyncRequest, SyncResponse};

#[derive(Parser, Debug)]
#[command(name = "syncgen", about = "jitsudod sync load driver")]
struct Args {
    /// Service base URL (http://127.0.0.1:PORT)
    #[arg(long)]
    url: String,
    /// Admin token (from `jitsudod add-admin`): registers hosts, revokes grants
    #[arg(long)]
    admin_token: String,
    /// Enrolled hosts
    #[arg(long, default_value_t = 10000)]
    hosts: usize,
    /// Outstanding revocations (one revoked grant on each of this many hosts)
    #[arg(long, default_value_t = 10000)]
    revocations: usize,
    /// Concurrent clients
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Measured syncs with each host's own list
    #[arg(long, default_value_t = 20000)]
    syncs: usize,
    /// Measured syncs as older hosts send them (the fleet's list); 0 for none
    #[arg(long, default_value_t = 2000)]
    fleet_syncs: usize,
    /// Label copied into the JSON output
    #[arg(long, default_value = "")]
    label: String,
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .new_agent()
}

struct Host {
    name: String,
    key: SecretKey,
}

fn call(
    agent: &ureq::Agent,
    url: &str,
    token: Option<&str>,
    body: Option<String>,
) -> Result<String, String> {
    let mut resp = match body {
        Some(b) => {
            let mut r = agent.post(url).header("content-type", "application/json");
            if let Some(t) = token {
                r = r.header("authorization", format!("Bearer {t}"));
            }
            r.send(b)
        }
        None => {
            let mut r = agent.get(url);
            if let Some(t) = token {
                r = r.header("authorization", format!("Bearer {t}"));
            }
            r.call()
        }
    }
    .map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let text = resp
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_string()
        .map_err(|e| e.to_string())?;
    if status != 200 {
        return Err(format!("{url}: {status} {text}"));
    }
    Ok(text)
}

fn envelope<T: serde::Serialize>(h: &Host, path: &str, body: &T) -> Result<String, String> {
    let envelope = wire::sign_envelope(&h.key, &h.name, path, jitsudo_core::grant::now(), body)?;
    serde_json::to_string(&Signed { envelope }).map_err(|e| e.to_string())
}

/// Enroll host `i`; when `revoke`, give it a grant and revoke it.
fn prepare(
    args: &Args,
    url: &str,
    agent: &ureq::Agent,
    h: &Host,
    revoke: bool,
) -> Result<(), String> {
    call(
        agent,
        &format!("{url}/v1/admin/hosts"),
        Some(&args.admin_token),
        Some(
            serde_json::json!({"name": h.name, "public_key": h.key.public.to_paserk()}).to_string(),
        ),
    )?;
    if !revoke {
        return Ok(());
    }
    let body = NewRequest {
        kind: jitsudo_core::grant::Kind::Exec,
        user: "bench".into(),
        uid: 50000,
        groups: vec![],
        run_as: "root".into(),
        argv: vec!["/usr/bin/id".into()],
        reason: "sync benchmark".into(),
        duration: None,
        once: false,
        source: None,
        ticket: None,
        extends: None,
    };
    let text = call(
        agent,
        &format!("{url}{}", wire::PATH_REQUESTS),
        None,
        Some(envelope(h, wire::PATH_REQUESTS, &body)?),
    )?;
    let status: RequestStatus = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let view: serde_json::Value = serde_json::from_str(&call(
        agent,
        &format!("{url}/v1/requests/{}", status.id),
        Some(&args.admin_token),
        None,
    )?)
    .map_err(|e| e.to_string())?;
    let grant = view["grant_id"]
        .as_str()
        .ok_or_else(|| format!("request {} has no grant: {view}", status.id))?;
    call(
        agent,
        &format!("{url}/v1/grants/{grant}/revoke"),
        Some(&args.admin_token),
        Some(r#"{"reason":"sync benchmark"}"#.to_string()),
    )?;
    Ok(())
}

/// One sync; the size of the answer.
fn sync(agent: &ureq::Agent, url: &str, h: &Host, own: bool) -> Result<usize, String> {
    let body = SyncRequest {
        host_revocations: own,
    };
    let text = call(
        agent,
        &format!("{url}{}", wire::PATH_SYNC),
        None,
        Some(envelope(h, wire::PATH_SYNC, &body)?),
    )?;
    let _: SyncResponse = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    Ok(text.len())
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

/// `total` syncs from `clients` threads, round robin over `hosts`.
fn measure(
    args: &Args,
    url: &str,
    hosts: &Arc<Vec<Host>>,
    total: usize,
    own: bool,
    label: &str,
) -> Result<serde_json::Value, String> {
    let per_client = total.div_ceil(args.clients);
    let barrier = Arc::new(Barrier::new(args.clients + 1));
    let errors = Arc::new(AtomicUsize::new(0));
    let first_error = Arc::new(Mutex::new(None::<String>));
    let mut threads = Vec::new();
    for c in 0..args.clients {
        let (barrier, errors, first_error) = (barrier.clone(), errors.clone(), first_error.clone());
        let (hosts, url, clients) = (hosts.clone(), url.to_string(), args.clients);
        threads.push(std::thread::spawn(move || {
            let agent = agent();
            // Warm-up (not counted): open the connection.
            let _ = sync(&agent, &url, &hosts[c % hosts.len()], own);
            barrier.wait();
            let mut latencies = Vec::with_capacity(per_client);
            let mut bytes = 0usize;
            for n in 0..per_client {
                let h = &hosts[(n * clients + c) % hosts.len()];
                let t = Instant::now();
                let r = sync(&agent, &url, h, own);
                latencies.push(t.elapsed());
                match r {
                    Ok(b) => bytes += b,
                    Err(e) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        first_error.lock().unwrap().get_or_insert(e);
                    }
                }
            }
            (latencies, bytes)
        }));
    }
    barrier.wait();
    let started = Instant::now();
    let (mut all, mut bytes) = (Vec::new(), 0usize);
    for t in threads {
        let (l, b) = t
            .join()
            .map_err(|_| "a client thread panicked".to_string())?;
        all.extend(l);
        bytes += b;
    }
    let wall = started.elapsed().as_secs_f64();
    all.sort();
    let n = all.len();
    let errors = errors.load(Ordering::Relaxed);
    if let Some(e) = first_error.lock().unwrap().take() {
        eprintln!("syncgen: {errors} sync(s) failed; first: {e}");
    }
    Ok(serde_json::json!({
        "label": label,
        "list": if own { "host" } else { "fleet" },
        "hosts": args.hosts,
        "revocations": args.revocations,
        "clients": args.clients,
        "syncs": n,
        "errors": errors,
        "seconds": wall,
        "syncs_per_second": (n - errors) as f64 / wall,
        "mean_response_bytes": bytes as f64 / (n - errors).max(1) as f64,
        "p50_ms": percentile(&all, 0.50),
        "p90_ms": percentile(&all, 0.90),
        "p99_ms": percentile(&all, 0.99),
        "max_ms": percentile(&all, 1.0),
    }))
}

fn main() -> Result<(), String> {
    let args = Args::parse();
    let url = args.url.trim_end_matches('/').to_string();
    if args.revocations > args.hosts {
        return Err("--revocations is at most --hosts (one revoked grant per host)".into());
    }
    // Host names unique per run, so a run can reuse a database.
    let run = wire::random_hex(4)?;
    // One more than --hosts: the quiet one below.
    let mut hosts = Vec::with_capacity(args.hosts + 1);
    for i in 0..=args.hosts {
        hosts.push(Host {
            name: format!("sync-{run}-{i}"),
            key: SecretKey::generate("host")?,
        });
    }
    let hosts = Arc::new(hosts);
    let started = Instant::now();
    // The host that has no revocation, measured before and after the fleet's: its
    // answer must not grow with other hosts' revocations.
    let quiet = args.hosts;
    prepare(&args, &url, &agent(), &hosts[quiet], false)?;
    let quiet_before = sync(&agent(), &url, &hosts[quiet], true)?;
    let next = Arc::new(AtomicUsize::new(0));
    let args = Arc::new(args);
    let workers: Vec<_> = (0..args.clients)
        .map(|_| {
            let (next, hosts, args, url) = (next.clone(), hosts.clone(), args.clone(), url.clone());
            std::thread::spawn(move || -> Result<(), String> {
                let agent = agent();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= quiet {
                        return Ok(());
                    }
                    prepare(&args, &url, &agent, &hosts[i], i < args.revocations)?;
                }
            })
        })
        .collect();
    for w in workers {
        w.join()
            .map_err(|_| "a setup thread panicked".to_string())??;
    }
    eprintln!(
        "syncgen: {} hosts enrolled, {} grants revoked in {:.1}s",
        args.hosts + 1,
        args.revocations,
        started.elapsed().as_secs_f64()
    );
    let quiet_after = sync(&agent(), &url, &hosts[quiet], true)?;
    let mut own = measure(&args, &url, &hosts, args.syncs, true, &args.label)?;
    own["quiet_host_response_bytes"] = serde_json::json!({
        "before_revocations": quiet_before,
        "after_revocations": quiet_after,
    });
    println!("{own}");
    if args.fleet_syncs > 0 {
        println!(
            "{}",
            measure(&args, &url, &hosts, args.fleet_syncs, false, &args.label)?
        );
    }
    Ok(())
}
