//! Load driver for `jitsudod` (used by benches/service.sh): N host clients, each with
//! its own registered Ed25519 host key, send signed requests over HTTP exactly as the
//! setuid `jitsudo --request` does (same envelope code), and the policy decides them
//! automatically. Reports decisions per second and latency percentiles as one JSON line
//! on stdout.
//!
//! ```text
//! loadgen --url http://127.0.0.1:8443 --admin-token jt_… --clients 8 --requests 20000
//! ```
//!
//! Latency is one request's wall time as its client sees it: sign the envelope, POST,
//! read and parse the answer (the grant). Throughput is all requests over the wall time
//! of the run. A short warm-up (not counted) registers the hosts and opens connections.
#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use clap::Parser;
use jitsudo_core::grant::keys::SecretKey;
use jitsudo_core::wire::{self, NewRequest, RequestStatus, Signed};

#[derive(Parser, Debug)]
#[command(name = "loadgen", about = "jitsudod load driver")]
struct Args {
    /// Service base URL (http://127.0.0.1:PORT)
    #[arg(long)]
    url: String,
    /// Admin token (from `jitsudod add-admin`), used to register the bench hosts
    #[arg(long)]
    admin_token: String,
    /// Concurrent host clients, each its own host with its own key
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Requests in total (split evenly over the clients)
    #[arg(long, default_value_t = 20000)]
    requests: usize,
    /// Unmeasured requests per client before the run
    #[arg(long, default_value_t = 20)]
    warmup: usize,
    /// Program requested (an auto-approved rule must cover it with `*`)
    #[arg(long, default_value = "/usr/bin/id")]
    program: String,
    /// Label copied into the JSON output
    #[arg(long, default_value = "")]
    label: String,
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .new_agent()
}

struct Client {
    host: String,
    key: SecretKey,
    user: String,
    program: String,
    agent: ureq::Agent,
    url: String,
}

impl Client {
    /// One request, as `jitsudo --request` sends it; Err on anything but a grant.
    fn request(&self, n: usize) -> Result<(), String> {
        let body = NewRequest {
            kind: jitsudo_core::grant::Kind::Exec,
            user: self.user.clone(),
            uid: 50000,
            groups: vec![],
            run_as: "root".into(),
            argv: vec![self.program.clone(), "-u".into(), n.to_string()],
            reason: "load benchmark".into(),
            duration: None,
            once: false,
            source: None,
            ticket: None,
            extends: None,
        };
        let envelope = wire::sign_envelope(
            &self.key,
            &self.host,
            wire::PATH_REQUESTS,
            jitsudo_core::grant::now(),
            &body,
        )?;
        let mut resp = self
            .agent
            .post(format!("{}{}", self.url, wire::PATH_REQUESTS))
            .header("content-type", "application/json")
            .send(serde_json::to_string(&Signed { envelope }).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .read_to_string()
            .map_err(|e| e.to_string())?;
        if status != 200 {
            return Err(format!("{status}: {text}"));
        }
        let answer: RequestStatus = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        match answer.grant {
            Some(_) => Ok(()),
            None => Err(format!("no grant: {} ({})", answer.status, answer.message)),
        }
    }
}

fn register(args: &Args, host: &str, key: &SecretKey) -> Result<(), String> {
    let mut resp = agent()
        .post(format!("{}/v1/admin/hosts", args.url))
        .header("authorization", format!("Bearer {}", args.admin_token))
        .header("content-type", "application/json")
        .send(serde_json::json!({"name": host, "public_key": key.public.to_paserk()}).to_string())
        .map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    if status != 200 {
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        return Err(format!("cannot register {host}: {status} {text}"));
    }
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

fn main() -> Result<(), String> {
    let args = Args::parse();
    let url = args.url.trim_end_matches('/').to_string();
    // Host names unique per run, so a run can reuse a database.
    let run = wire::random_hex(4)?;
    let mut clients = Vec::new();
    for i in 0..args.clients {
        let host = format!("bench-{run}-{i}");
        let key = SecretKey::generate("host")?;
        register(&args, &host, &key)?;
        clients.push(Client {
            host,
            key,
            user: format!("bench{i}"),
            program: args.program.clone(),
            agent: agent(),
            url: url.clone(),
        });
    }
    let per_client = args.requests.div_ceil(args.clients);
    let barrier = Arc::new(Barrier::new(args.clients + 1));
    let errors = Arc::new(AtomicUsize::new(0));
    let first_error = Arc::new(std::sync::Mutex::new(None::<String>));
    let mut threads = Vec::new();
    for client in clients {
        let (barrier, errors, first_error) = (barrier.clone(), errors.clone(), first_error.clone());
        let warmup = args.warmup;
        threads.push(std::thread::spawn(move || {
            for n in 0..warmup {
                let _ = client.request(n);
            }
            barrier.wait();
            let mut latencies = Vec::with_capacity(per_client);
            for n in 0..per_client {
                let t = Instant::now();
                let r = client.request(n);
                latencies.push(t.elapsed());
                if let Err(e) = r {
                    errors.fetch_add(1, Ordering::Relaxed);
                    first_error.lock().unwrap().get_or_insert(e);
                }
            }
            latencies
        }));
    }
    barrier.wait();
    let started = Instant::now();
    let mut all = Vec::new();
    for t in threads {
        all.extend(
            t.join()
                .map_err(|_| "a client thread panicked".to_string())?,
        );
    }
    let wall = started.elapsed().as_secs_f64();
    all.sort();
    let n = all.len();
    let errors = errors.load(Ordering::Relaxed);
    let out = serde_json::json!({
        "label": args.label,
        "clients": args.clients,
        "requests": n,
        "errors": errors,
        "seconds": wall,
        "decisions_per_second": (n - errors) as f64 / wall,
        "p50_ms": percentile(&all, 0.50),
        "p90_ms": percentile(&all, 0.90),
        "p99_ms": percentile(&all, 0.99),
        "max_ms": percentile(&all, 1.0),
    });
    println!("{out}");
    if let Some(e) = first_error.lock().unwrap().take() {
        eprintln!("loadgen: {errors} request(s) failed; first: {e}");
    }
    Ok(())
}
