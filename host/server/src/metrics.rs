//! Prometheus metrics, hand-written text format: requests by endpoint and outcome, a latency
//! histogram, fraud events and database errors.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency histogram's buckets, in seconds.
const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

/// The server's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
    fraud_events: AtomicU64,
    db_errors: AtomicU64,
}

impl Metrics {
    /// Counts one message on `endpoint` with `outcome` that took `elapsed`.
    pub fn observe(&self, endpoint: &'static str, outcome: &'static str, elapsed: Duration) {
        if let Ok(mut m) = self.requests.lock() {
            *m.entry((endpoint, outcome)).or_insert(0) += 1;
        }
        let secs = elapsed.as_secs_f64();
        for (bound, counter) in BUCKETS.iter().zip(&self.buckets) {
            if secs <= *bound {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.latency_sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// Counts a registered fraud event.
    pub fn fraud_event(&self) {
        self.fraud_events.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a database error.
    pub fn db_error(&self) {
        self.db_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP simkit_requests_total Messages handled, by endpoint and outcome.\n");
        out.push_str("# TYPE simkit_requests_total counter\n");
        if let Ok(m) = self.requests.lock() {
            for ((endpoint, outcome), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "simkit_requests_total{{endpoint=\"{endpoint}\",outcome=\"{outcome}\"}} {n}"
                );
            }
        }
        out.push_str("# HELP simkit_request_duration_seconds Time to answer a message.\n");
        out.push_str("# TYPE simkit_request_duration_seconds histogram\n");
        for (bound, counter) in BUCKETS.iter().zip(&self.buckets) {
            let _ = writeln!(
                out,
                "simkit_request_duration_seconds_bucket{{le=\"{bound}\"}} {}",
                counter.load(Ordering::Relaxed)
            );
        }
        let count = self.latency_count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "simkit_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let sum = self.latency_sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "simkit_request_duration_seconds_sum {sum}");
        let _ = writeln!(out, "simkit_request_duration_seconds_count {count}");
        out.push_str("# HELP simkit_fraud_events_total Registered fraud events.\n");
        out.push_str("# TYPE simkit_fraud_events_total counter\n");
        let _ = writeln!(
            out,
            "simkit_fraud_events_total {}",
            self.fraud_events.load(Ordering::Relaxed)
        );
        out.push_str("# HELP simkit_db_errors_total Database errors.\n");
        out.push_str("# TYPE simkit_db_errors_total counter\n");
        let _ = writeln!(
            out,
            "simkit_db_errors_total {}",
            self.db_errors.load(Ordering::Relaxed)
        );
        out
    }
}
