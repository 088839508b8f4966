//! The service's Prometheus counters. (Rate limits are counted in the database, for
//! the whole fleet of replicas: see `service::fleet`.)
#![forbid(unsafe_code)]

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// Latency buckets for new-request handling, in seconds.
const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

#[derive(Default)]
pub struct Metrics {
    pub decisions_auto: AtomicU64,
    pub decisions_approve: AtomicU64,
    pub decisions_deny: AtomicU64,
    pub grants_issued: AtomicU64,
    pub approvals: AtomicU64,
    pub denials_by_approver: AtomicU64,
    pub revocations: AtomicU64,
    pub host_auth_failures: AtomicU64,
    pub approver_auth_failures: AtomicU64,
    pub rate_limited: AtomicU64,
    pub syncs: AtomicU64,
    pub policy_reloads_ok: AtomicU64,
    pub policy_reloads_failed: AtomicU64,
    latency_buckets: [AtomicU64; 10],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
}

pub fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl Metrics {
    pub fn observe_request_seconds(&self, secs: f64) {
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                inc(&self.latency_buckets[i]);
            }
        }
        inc(&self.latency_count);
        self.latency_sum_micros
            .fetch_add((secs * 1e6) as u64, Ordering::Relaxed);
    }

    /// Prometheus text exposition format.
    pub fn render(&self, pending: i64, rules: usize) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, values: &[(&str, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (labels, v) in values {
                let _ = writeln!(out, "{name}{labels} {v}");
            }
        };
        counter(
            "jitsudod_decisions_total",
            "Policy decisions on new requests.",
            &[
                ("{decision=\"auto\"}", get(&self.decisions_auto)),
                ("{decision=\"approve\"}", get(&self.decisions_approve)),
                ("{decision=\"deny\"}", get(&self.decisions_deny)),
            ],
        );
        counter(
            "jitsudod_grants_issued_total",
            "Grants signed and stored.",
            &[("", get(&self.grants_issued))],
        );
        counter(
            "jitsudod_approvals_total",
            "Approvals recorded.",
            &[("", get(&self.approvals))],
        );
        counter(
            "jitsudod_approver_denials_total",
            "Requests denied by approvers.",
            &[("", get(&self.denials_by_approver))],
        );
        counter(
            "jitsudod_revocations_total",
            "Grants revoked.",
            &[("", get(&self.revocations))],
        );
        counter(
            "jitsudod_auth_failures_total",
            "Rejected host envelopes and approver tokens.",
            &[
                ("{kind=\"host\"}", get(&self.host_auth_failures)),
                ("{kind=\"approver\"}", get(&self.approver_auth_failures)),
            ],
        );
        counter(
            "jitsudod_rate_limited_total",
            "Requests refused by a rate limit.",
            &[("", get(&self.rate_limited))],
        );
        counter(
            "jitsudod_host_syncs_total",
            "Host syncs served.",
            &[("", get(&self.syncs))],
        );
        counter(
            "jitsudod_policy_reloads_total",
            "Policy reloads on SIGHUP.",
            &[
                ("{result=\"ok\"}", get(&self.policy_reloads_ok)),
                ("{result=\"rejected\"}", get(&self.policy_reloads_failed)),
            ],
        );
        let _ = writeln!(out, "# HELP jitsudod_pending_requests Requests waiting for approval.\n# TYPE jitsudod_pending_requests gauge\njitsudod_pending_requests {pending}");
        let _ = writeln!(out, "# HELP jitsudod_policy_rules Rules in the active policy.\n# TYPE jitsudod_policy_rules gauge\njitsudod_policy_rules {rules}");
        let name = "jitsudod_request_seconds";
        let _ = writeln!(out, "# HELP {name} Time to decide a new request (and issue its grant).\n# TYPE {name} histogram");
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{b}\"}} {}",
                get(&self.latency_buckets[i])
            );
        }
        let count = get(&self.latency_count);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            get(&self.latency_sum_micros) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count {count}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_render() {
        let m = Metrics::default();
        inc(&m.decisions_auto);
        m.observe_request_seconds(0.003);
        let text = m.render(2, 5);
        assert!(text.contains("jitsudod_decisions_total{decision=\"auto\"} 1"));
        assert!(text.contains("jitsudod_request_seconds_bucket{le=\"0.005\"} 1"));
        assert!(text.contains("jitsudod_request_seconds_bucket{le=\"0.0025\"} 0"));
        assert!(text.contains("jitsudod_pending_requests 2"));
    }
}
