//! Several approval-service URLs (`service = ["https://a", "https://b"]`): replicas on
//! one database, for hosts that have no load balancer in front of them, or two load
//! balancers. Every replica answers every call (the database is shared), so a call that
//! cannot reach one replica may go to the next.
//!
//! A call moves on only when the replica could not be reached, timed out, or said it is
//! unavailable (502, 503, 504). Any other answer is the service's answer and is final:
//! a refusal from one replica would be the same refusal from the next. Each attempt is
//! bounded by its own timeouts, so N replicas cost at most N timeouts.
#![forbid(unsafe_code)]

use std::cell::Cell;
use std::path::Path;
use std::time::Duration;

use crate::http::{CallError, Service};

pub struct Failover {
    replicas: Vec<Service>,
    /// The replica that answered last; the next call starts there.
    current: Cell<usize>,
}

impl Failover {
    /// Every URL is checked up front: one bad URL is a configuration error, not a
    /// replica that happens to be down.
    pub fn new(urls: &[String], ca_file: Option<&Path>, timeout: Duration) -> Result<Self, String> {
        if urls.is_empty() {
            return Err("no approval service URL was given".into());
        }
        let replicas = urls
            .iter()
            .map(|u| Service::new(u, ca_file, timeout))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Failover {
            replicas,
            current: Cell::new(0),
        })
    }

    /// Make one call, on the current replica first and then on each other one in turn.
    pub fn call<R>(&self, f: impl Fn(&Service) -> Result<R, CallError>) -> Result<R, CallError> {
        let n = self.replicas.len();
        let first = self.current.get();
        let mut attempt = 0;
        loop {
            let index = (first + attempt) % n;
            let replica = &self.replicas[index];
            let result = f(replica);
            attempt += 1;
            match result {
                Err(e) if attempt < n && worth_another_replica(&e) => {
                    let next = &self.replicas[(first + attempt) % n];
                    eprintln!("jitsudo: {}: {e}; trying {}", replica.base(), next.base());
                }
                result => {
                    self.current.set(index);
                    return result;
                }
            }
        }
    }
}

fn worth_another_replica(e: &CallError) -> bool {
    match e {
        CallError::Transport(_) => true,
        CallError::Status { code, .. } => matches!(code, 502..=504),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// A one-address HTTP server that answers every request with `status` and `body`,
    /// counting the requests it got.
    fn server(status: &'static str, body: &'static str) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                counter.fetch_add(1, Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        (url, hits)
    }

    /// An address nothing listens on: bind, learn the port, close.
    fn dead() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    }

    fn ask(f: &Failover) -> Result<serde_json::Value, CallError> {
        f.call(|s| s.get::<serde_json::Value>("/healthz", &[]))
    }

    #[test]
    fn an_unreachable_replica_is_skipped_and_the_next_one_answers() {
        let (live, hits) = server("200 OK", r#"{"ok":true}"#);
        let f = Failover::new(&[dead(), live], None, Duration::from_secs(5)).unwrap();
        assert_eq!(ask(&f).unwrap()["ok"], true);
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        // The next call starts at the replica that answered.
        assert_eq!(ask(&f).unwrap()["ok"], true);
        assert_eq!(f.current.get(), 1);
    }

    #[test]
    fn an_unavailable_replica_is_skipped() {
        let (down, down_hits) = server("503 Service Unavailable", r#"{"error":"draining"}"#);
        let (live, _) = server("200 OK", r#"{"ok":true}"#);
        let f = Failover::new(&[down, live], None, Duration::from_secs(5)).unwrap();
        assert_eq!(ask(&f).unwrap()["ok"], true);
        assert_eq!(down_hits.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_refusal_is_final_and_not_retried_elsewhere() {
        let (refusing, _) = server("403 Forbidden", r#"{"error":"unknown host"}"#);
        let (other, other_hits) = server("200 OK", r#"{"ok":true}"#);
        let f = Failover::new(&[refusing, other], None, Duration::from_secs(5)).unwrap();
        match ask(&f) {
            Err(CallError::Status { code: 403, message }) => assert_eq!(message, "unknown host"),
            other => panic!("expected the 403, got {other:?}"),
        }
        assert_eq!(other_hits.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn when_every_replica_is_down_the_last_error_is_reported() {
        let f = Failover::new(&[dead(), dead()], None, Duration::from_secs(5)).unwrap();
        assert!(matches!(ask(&f), Err(CallError::Transport(_))));
    }

    #[test]
    fn one_bad_url_refuses_the_whole_list() {
        let err = Failover::new(
            &["https://a.example".into(), "http://10.0.0.1".into()],
            None,
            Duration::from_secs(5),
        )
        .err()
        .unwrap();
        assert!(err.contains("10.0.0.1"), "{err}");
        assert!(Failover::new(&[], None, Duration::from_secs(5)).is_err());
    }
}
