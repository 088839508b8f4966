//! Denial of service without credentials: many connections that each send half a
//! request, and a flood of the unauthenticated revocation list, while a host syncs and
//! a monitor asks /healthz. Both keep answering, and the server closes the half-open
//! connections itself (header and body read timeouts); over `max_connections`, a new
//! connection is closed at once and the service answers again when the others go.
//!
//! Latencies are printed (run with --nocapture to see them), never asserted.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::hosts::{agent, revoke, TestHost, POLICY};
use common::world::Service;
use common::TempDir;

const HALF_OPEN: usize = 1100;

fn addr(svc: &Service) -> String {
    svc.url.trim_start_matches("http://").to_string()
}

fn pct(xs: &mut [f64], p: f64) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    let i = ((xs.len() as f64 * p).ceil() as usize).clamp(1, xs.len()) - 1;
    xs[i]
}

/// What the server sends on `s` until it closes the connection (EOF or reset); `None`
/// if it is still open after a minute, which the test treats as a failure.
fn until_closed(s: &mut TcpStream) -> Option<Vec<u8>> {
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Some(got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Some(got),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return None
            }
            Err(e) => panic!("reading a half-open connection: {e}"),
        }
    }
}

fn metric(svc: &Service, name: &str) -> u64 {
    let mut resp = agent().get(format!("{}/metrics", svc.url)).call().unwrap();
    let text = resp.body_mut().read_to_string().unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
        .parse()
        .unwrap()
}

#[test]
fn half_open_requests_and_a_revocation_flood_leave_health_and_sync_answering() {
    common::require_root();
    // This process holds the 1,100 client ends, and the service (which inherits the
    // limit) the 1,100 server ends and its database.
    let limit = jitsudod::http::listener::open_files_limit().unwrap_or(0);
    assert!(
        limit >= 4096,
        "the open-files limit is {limit}; this test needs 4096 (ulimit -n 4096)"
    );
    let db = TempDir::new("dos-db");
    let svc = Service::start_with(
        &format!("sqlite://{}/x.db", db.path().display()),
        POLICY,
        None,
        "host_requests_per_minute = 1000000\nuser_requests_per_minute = 1000000\n\
         header_timeout_seconds = 2\nbody_timeout_seconds = 2\n",
        "",
    );
    let host = TestHost::register(&svc, "web-01");
    let other = TestHost::register(&svc, "web-02");
    for _ in 0..50 {
        let g = other.grant(&svc);
        revoke(&svc, &g);
    }
    host.grant(&svc);

    // Half a request each: headers cut off, or headers and half the body.
    let target = addr(&svc);
    let mut half: Vec<(TcpStream, bool)> = (0..HALF_OPEN)
        .map(|i| {
            let mut s = TcpStream::connect(&target).unwrap();
            let with_body = i % 2 == 1;
            let text = if with_body {
                "POST /v1/host/sync HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{\"envelope\":\""
            } else {
                "POST /v1/host/sync HTTP/1.1\r\nHost: x\r\ncontent-le"
            };
            s.write_all(text.as_bytes()).unwrap();
            (s, with_body)
        })
        .collect();

    // The flood: the unauthenticated fleet list, as fast as four threads can ask.
    let stop = Arc::new(AtomicBool::new(false));
    let flooded = Arc::new(AtomicU64::new(0));
    let floods: Vec<_> = (0..4)
        .map(|_| {
            let (stop, flooded, url) = (stop.clone(), flooded.clone(), svc.url.clone());
            std::thread::spawn(move || {
                let agent = agent();
                while !stop.load(Ordering::Relaxed) {
                    let mut r = agent.get(format!("{url}/v1/revocations")).call().unwrap();
                    assert_eq!(r.status().as_u16(), 200);
                    r.body_mut().read_to_vec().unwrap();
                    flooded.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();

    // Meanwhile: /healthz and the host's sync answer, every time.
    let (mut health, mut syncs) = (Vec::new(), Vec::new());
    let client = agent();
    for _ in 0..40 {
        let t = Instant::now();
        let mut r = client.get(format!("{}/healthz", svc.url)).call().unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(r.body_mut().read_to_string().unwrap(), r#"{"status":"ok"}"#);
        health.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        let answer = host.sync(&svc, true);
        syncs.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(answer.grants.len(), 1);
        let list = jitsudo_core::wire::verify_host_revocations(
            &answer.revocations,
            &common::hosts::trusted(&svc),
            "web-01",
        )
        .unwrap();
        assert!(list.ids.is_empty(), "web-02's revocations are not web-01's");
    }
    stop.store(true, Ordering::Relaxed);
    for f in floods {
        f.join().unwrap();
    }
    let flood_count = flooded.load(Ordering::Relaxed);
    assert!(flood_count > 0);

    // The server closed every half-open connection itself; one with half a body was
    // told why first.
    let mut told_408 = 0;
    for (s, with_body) in half.iter_mut() {
        let got = until_closed(s).expect("the server left a half-open connection open");
        let text = String::from_utf8_lossy(&got);
        if *with_body {
            assert!(text.starts_with("HTTP/1.1 408"), "{text}");
            assert!(text.contains("did not arrive within 2s"), "{text}");
            told_408 += 1;
        }
    }
    assert_eq!(told_408, HALF_OPEN / 2);
    assert!(metric(&svc, "jitsudod_body_timeouts_total") >= (HALF_OPEN / 2) as u64);
    assert_eq!(metric(&svc, "jitsudod_connections_refused_total"), 0);

    println!(
        "{HALF_OPEN} half-open connections + {flood_count} flooded GET /v1/revocations: \
         /healthz p50 {:.1} ms p99 {:.1} ms max {:.1} ms; host sync p50 {:.1} ms p99 {:.1} ms max {:.1} ms",
        pct(&mut health, 0.5),
        pct(&mut health, 0.99),
        pct(&mut health, 1.0),
        pct(&mut syncs, 0.5),
        pct(&mut syncs, 0.99),
        pct(&mut syncs, 1.0),
    );
}

#[test]
fn over_max_connections_a_new_one_is_closed_at_once() {
    common::require_root();
    let db = TempDir::new("dos-cap-db");
    let svc = Service::start_with(
        &format!("sqlite://{}/x.db", db.path().display()),
        POLICY,
        None,
        "max_connections = 16\nheader_timeout_seconds = 600\n",
        "",
    );
    let target = addr(&svc);
    // Fill the places with idle connections (half a request each, kept open: the header
    // timeout is long), one more each time a complete request is still answered; the
    // first one not answered, closed at once, shows the cap. Whatever else holds a
    // place (a client's pooled connection) only means fewer idle ones are needed.
    let mut idle: Vec<TcpStream> = Vec::new();
    let mut refused = false;
    for _ in 0..100 {
        let mut s = TcpStream::connect(&target).unwrap();
        // A connection closed at once may refuse the write too.
        let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let got = until_closed(&mut s).expect("neither answered nor closed");
        if got.is_empty() {
            refused = true;
            break;
        }
        assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"));
        let mut held = TcpStream::connect(&target).unwrap();
        held.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .unwrap();
        idle.push(held);
    }
    assert!(
        refused,
        "100 connections held and a new one was still answered"
    );
    // When the idle ones go, the places come back.
    drop(idle);
    let mut answered = false;
    for _ in 0..200 {
        if let Ok(mut r) = agent().get(format!("{}/healthz", svc.url)).call() {
            if r.status().as_u16() == 200 {
                assert_eq!(r.body_mut().read_to_string().unwrap(), r#"{"status":"ok"}"#);
                answered = true;
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        answered,
        "the service never answered again after the idle connections closed"
    );
    assert!(metric(&svc, "jitsudod_connections_refused_total") >= 1);
}
