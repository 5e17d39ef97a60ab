//! Metrics: latency summaries, process-wide timings, and the Prometheus text
//! format that ZooKeeper's `PrometheusMetricsProvider` serves at `/metrics`.
//!
//! - [`Summary`]: count, sum, min, max since the last reset, and quantiles
//!   over the most recent observations (at most [`RECENT`], at most
//!   [`WINDOW`] old; NaN when there is none, as a Prometheus summary).
//! - [`global`]: timings measured outside the core task (fsync, snapshot),
//!   shared by every server of the process, as ZooKeeper's `ServerMetrics`.
//! - [`PromText`]: the exposition format 0.0.4 as ZooKeeper's Prometheus
//!   client (simpleclient 0.9) writes it: `# HELP`/`# TYPE` lines, values as
//!   Java doubles, label sets with a trailing comma.

use super::json::java_double;
use std::collections::VecDeque;
use std::fmt::Write;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Observations kept for quantiles.
pub const RECENT: usize = 2048;
/// Observations older than this do not count in quantiles (Prometheus'
/// summary default `maxAgeSeconds`).
pub const WINDOW: Duration = Duration::from_secs(600);

#[derive(Debug, Default, Clone)]
pub struct Summary {
    count: u64,
    sum: u64,
    min: u64,
    max: u64,
    recent: VecDeque<(Instant, u64)>,
}

impl Summary {
    pub fn record(&mut self, v: u64) {
        if self.count == 0 || v < self.min {
            self.min = v;
        }
        self.max = self.max.max(v);
        self.sum = self.sum.saturating_add(v);
        self.count += 1;
        if self.recent.len() >= RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back((Instant::now(), v));
    }

    pub fn reset(&mut self) {
        *self = Summary::default();
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn sum(&self) -> u64 {
        self.sum
    }

    /// 0 when nothing was observed (ZooKeeper's `AvgMinMaxCounter`).
    pub fn min(&self) -> u64 {
        if self.count == 0 {
            0
        } else {
            self.min
        }
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    /// Rounded to 4 decimals, 0 when empty (ZooKeeper's `getAvg`).
    pub fn avg(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            super::json::round4(self.sum as f64 / self.count as f64)
        }
    }

    /// Quantiles (nearest rank) of the recent observations; `None` when the
    /// window is empty.
    pub fn quantiles(&self, qs: &[f64]) -> Vec<Option<u64>> {
        let now = Instant::now();
        let mut v: Vec<u64> =
            self.recent.iter().filter(|(t, _)| now.duration_since(*t) <= WINDOW).map(|(_, v)| *v).collect();
        if v.is_empty() {
            return vec![None; qs.len()];
        }
        v.sort_unstable();
        qs.iter()
            .map(|q| {
                let rank = (q * v.len() as f64).ceil() as usize;
                Some(v[rank.clamp(1, v.len()) - 1])
            })
            .collect()
    }
}

/// Timings measured off the core task. Whoever measures them calls
/// [`record_fsync`] / [`record_snapshot`].
#[derive(Debug, Default)]
pub struct GlobalMetrics {
    pub fsync_ms: Mutex<Summary>,
    pub snapshot_ms: Mutex<Summary>,
    pub fsync_threshold_exceeded: std::sync::atomic::AtomicU64,
}

pub fn global() -> &'static GlobalMetrics {
    static G: OnceLock<GlobalMetrics> = OnceLock::new();
    G.get_or_init(GlobalMetrics::default)
}

/// One transaction-log fsync took `ms` (ZooKeeper's `fsynctime`);
/// `over_threshold` when it exceeded `fsync.warningthresholdms`.
pub fn record_fsync(ms: u64, over_threshold: bool) {
    let g = global();
    g.fsync_ms.lock().unwrap_or_else(|e| e.into_inner()).record(ms);
    if over_threshold {
        g.fsync_threshold_exceeded.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// One snapshot took `ms` to write (ZooKeeper's `snapshottime`).
pub fn record_snapshot(ms: u64) {
    global().snapshot_ms.lock().unwrap_or_else(|e| e.into_inner()).record(ms);
}

/// A copy of a global summary.
pub fn snapshot_of(m: &Mutex<Summary>) -> Summary {
    m.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// ZooKeeper's summaries: `ADVANCED` ones export three quantiles, `BASIC`
/// ones the median only.
pub const ADVANCED: &[f64] = &[0.5, 0.9, 0.99];
pub const BASIC: &[f64] = &[0.5];

/// Writes the Prometheus text exposition format.
#[derive(Default)]
pub struct PromText {
    pub out: String,
}

fn prom_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        java_double(v)
    }
}

fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n").replace('"', "\\\"")
}

impl PromText {
    fn header(&mut self, name: &str, help: &str, kind: &str) {
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], v: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (k, val) in labels {
                let _ = write!(self.out, "{k}=\"{}\",", escape_label(val));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {}", prom_value(v));
    }

    /// A gauge; ZooKeeper's own use their name as help text.
    pub fn gauge(&mut self, name: &str, help: &str, v: f64) {
        self.header(name, help, "gauge");
        self.sample(name, &[], v);
    }

    pub fn counter(&mut self, name: &str, help: &str, v: f64) {
        self.header(name, help, "counter");
        self.sample(name, &[], v);
    }

    /// A gauge with one sample per label set.
    pub fn labelled_gauge(&mut self, name: &str, help: &str, samples: &[(Vec<(&str, &str)>, f64)]) {
        self.header(name, help, "gauge");
        for (labels, v) in samples {
            self.sample(name, labels, *v);
        }
    }

    pub fn summary(&mut self, name: &str, help: &str, s: &Summary, qs: &[f64]) {
        self.header(name, help, "summary");
        for (q, v) in qs.iter().zip(s.quantiles(qs)) {
            let ql = java_double(*q);
            self.sample(name, &[("quantile", &ql)], v.map_or(f64::NAN, |v| v as f64));
        }
        self.sample(&format!("{name}_count"), &[], s.count() as f64);
        self.sample(&format!("{name}_sum"), &[], s.sum() as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_basics() {
        let mut s = Summary::default();
        assert_eq!((s.min(), s.max(), s.avg()), (0, 0, 0.0));
        assert_eq!(s.quantiles(&[0.5]), vec![None]);
        for v in 1..=100 {
            s.record(v);
        }
        assert_eq!((s.count(), s.sum(), s.min(), s.max()), (100, 5050, 1, 100));
        assert_eq!(s.avg(), 50.5);
        assert_eq!(s.quantiles(&[0.5, 0.9, 0.99]), vec![Some(50), Some(90), Some(99)]);
        for _ in 0..RECENT {
            s.record(7);
        }
        assert_eq!(s.quantiles(&[0.99]), vec![Some(7)]);
        s.reset();
        assert_eq!(s.count(), 0);
    }

    #[test]
    fn prometheus_text() {
        let mut p = PromText::default();
        p.gauge("znode_count", "znode_count", 5.0);
        let mut s = Summary::default();
        s.record(3);
        p.summary("readlatency", "readlatency", &s, ADVANCED);
        assert_eq!(
            p.out,
            "# HELP znode_count znode_count\n# TYPE znode_count gauge\nznode_count 5.0\n\
             # HELP readlatency readlatency\n# TYPE readlatency summary\n\
             readlatency{quantile=\"0.5\",} 3.0\nreadlatency{quantile=\"0.9\",} 3.0\n\
             readlatency{quantile=\"0.99\",} 3.0\nreadlatency_count 1.0\nreadlatency_sum 3.0\n"
        );
    }
}
