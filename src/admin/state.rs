//! What the admin side of one server keeps beside the core: the core's inbox
//! once recovery is done, start-up timings, the zoo.cfg text, counters of
//! its own; and the process-wide trace mask (`gtmk`/`stmk`, as ZooKeeper's
//! static `ZooTrace`).
//!
//! The core reaches its server's state through [`state_for`], keyed by the
//! core's `Arc<ServerConfig>` (several servers may share a test process).

use super::metrics::Summary;
use crate::config::ServerConfig;
use crate::pipeline::{Core, CoreMsg, Inspector};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// ZooKeeper's default text trace mask (`ZooTrace.textTraceMask`).
pub const DEFAULT_TRACE_MASK: i64 = 306;

static TRACE_MASK: AtomicI64 = AtomicI64::new(DEFAULT_TRACE_MASK);

pub fn trace_mask() -> i64 {
    TRACE_MASK.load(Ordering::Relaxed)
}

pub fn set_trace_mask(v: i64) {
    TRACE_MASK.store(v, Ordering::Relaxed);
}

/// How long an admin request waits for the core before it gives up.
pub const CORE_TIMEOUT: Duration = Duration::from_secs(5);

pub struct AdminState {
    pub cfg: Arc<ServerConfig>,
    core: OnceLock<mpsc::Sender<CoreMsg>>,
    pub started: Instant,
    /// The zoo.cfg text as read at start (`initial_configuration`).
    pub initial_config: Option<String>,
    /// Time to load the snapshot and replay the log (`dbinittime`).
    pub db_init_ms: Mutex<Summary>,
    /// Transactions replayed from the log at start (`startup_txns_loaded`).
    pub txns_loaded: Mutex<Summary>,
    pub admin_requests: AtomicU64,
    pub metrics_scrapes: AtomicU64,
    pub admin_addr: OnceLock<SocketAddr>,
    pub metrics_addr: OnceLock<SocketAddr>,
    /// Cancelled by [`AdminState::stop`]: the listeners close.
    pub stopped: tokio_util::sync::CancellationToken,
}

/// Admin states by the address of their server's configuration.
type Registry = Mutex<Vec<(usize, Weak<AdminState>)>>;

impl Drop for AdminState {
    /// The server is gone (or never started): its listeners close.
    fn drop(&mut self) {
        self.stopped.cancel();
    }
}

fn registry() -> &'static Registry {
    static R: OnceLock<Registry> = OnceLock::new();
    R.get_or_init(Default::default)
}

fn key(cfg: &Arc<ServerConfig>) -> usize {
    Arc::as_ptr(cfg) as usize
}

/// The admin state of the server whose core runs with this configuration.
pub fn state_for(cfg: &Arc<ServerConfig>) -> Option<Arc<AdminState>> {
    let r = registry().lock().unwrap_or_else(|e| e.into_inner());
    r.iter().find(|(k, _)| *k == key(cfg)).and_then(|(_, w)| w.upgrade())
}

impl AdminState {
    pub fn new(cfg: Arc<ServerConfig>) -> Arc<Self> {
        let initial_config = cfg.config_file.as_ref().and_then(|p| std::fs::read_to_string(p).ok());
        let s = Arc::new(AdminState {
            cfg,
            core: OnceLock::new(),
            started: Instant::now(),
            initial_config,
            db_init_ms: Mutex::new(Summary::default()),
            txns_loaded: Mutex::new(Summary::default()),
            admin_requests: AtomicU64::new(0),
            metrics_scrapes: AtomicU64::new(0),
            admin_addr: OnceLock::new(),
            metrics_addr: OnceLock::new(),
            stopped: tokio_util::sync::CancellationToken::new(),
        });
        let mut r = registry().lock().unwrap_or_else(|e| e.into_inner());
        r.retain(|(_, w)| w.strong_count() > 0);
        r.push((key(&s.cfg), Arc::downgrade(&s)));
        s
    }

    /// Recovery finished: how long it took and how many transactions it
    /// replayed.
    pub fn recovered(&self, took: Duration, replayed: u64) {
        self.db_init_ms.lock().unwrap_or_else(|e| e.into_inner()).record(took.as_millis() as u64);
        self.txns_loaded.lock().unwrap_or_else(|e| e.into_inner()).record(replayed);
    }

    /// The core is running: commands that need it can run from now on.
    pub fn attach(&self, core: mpsc::Sender<CoreMsg>) {
        let _ = self.core.set(core);
    }

    /// The server is stopping: close the AdminServer and metrics listeners
    /// (requests in progress finish).
    pub fn stop(&self) {
        self.stopped.cancel();
    }

    pub fn is_attached(&self) -> bool {
        self.core.get().is_some()
    }

    /// Runs `f` on the core's task, in order with everything else it does;
    /// `None` when the core is not running yet, is gone, or does not answer
    /// within [`CORE_TIMEOUT`].
    pub async fn inspect<T: Send + 'static>(&self, f: impl FnOnce(&mut Core) -> T + Send + 'static) -> Option<T> {
        let core = self.core.get()?.clone();
        let (tx, rx) = oneshot::channel();
        let job = Inspector(Box::new(move |c: &mut Core| {
            let _ = tx.send(f(c));
        }));
        tokio::time::timeout(CORE_TIMEOUT, async move {
            core.send(CoreMsg::Inspect(job)).await.ok()?;
            rx.await.ok()
        })
        .await
        .ok()
        .flatten()
    }

    /// Resets what `srst` resets outside the core (ZooKeeper's
    /// `ServerMetrics.resetAll`).
    pub fn reset_metrics(&self) {
        self.db_init_ms.lock().unwrap_or_else(|e| e.into_inner()).reset();
        self.txns_loaded.lock().unwrap_or_else(|e| e.into_inner()).reset();
        let g = super::metrics::global();
        g.fsync_ms.lock().unwrap_or_else(|e| e.into_inner()).reset();
        g.snapshot_ms.lock().unwrap_or_else(|e| e.into_inner()).reset();
    }

    pub fn count_admin_request(&self) {
        self.admin_requests.fetch_add(1, Ordering::Relaxed);
    }
}
