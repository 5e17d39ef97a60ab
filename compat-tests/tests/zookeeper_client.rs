//! Drives an in-process Ferrokeeper with the independent Rust client crate
//! `zookeeper-client` (0.11.2), the way a ZooKeeper user of that crate would.
//!
//! Expected values are those Apache ZooKeeper 3.9 produces. Every await is
//! bounded (`t!`), every test gets a fresh server on 127.0.0.1.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::net::{TcpListener, TcpStream};

use zookeeper_client::{
    Acl, Acls, AddWatchMode, AuthId, AuthUser, Client, CreateMode, CreateOptions, Error, EventType, LockOptions,
    LockPrefix, MultiReadResult, MultiWriteError, MultiWriteResult, Permission, PersistentWatcher, SessionState, Stat,
    WatchedEvent,
};

/// Upper bound for any single step of a test.
const STEP: Duration = Duration::from_secs(10);

/// `digest` id of `user:pw`: `user:` + base64(sha1("user:pw")).
const USER_DIGEST_ID: &str = "user:2Om+GBbT2q/tS6pdvACZbbm7/1A=";

async fn bounded<T>(what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(STEP, fut).await {
        Ok(v) => v,
        Err(_) => panic!("no answer within {STEP:?}: {what}"),
    }
}

/// Awaits a future, failing the test if it takes longer than [`STEP`].
macro_rules! t {
    ($fut:expr) => {
        bounded(concat!(stringify!($fut), " (line ", line!(), ")"), $fut).await
    };
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

async fn server_with(entries: &[(&str, &str)], defines: &[(&str, &str)]) -> String {
    let addr = t!(compat_tests::start_server(entries, defines)).expect("ferrokeeper starts");
    assert!(addr.ip().is_loopback());
    addr.to_string()
}

async fn server() -> String {
    server_with(&[], &[]).await
}

async fn connect(cluster: &str) -> Client {
    t!(Client::connect(cluster)).expect("connect")
}

fn open(mode: CreateMode) -> CreateOptions<'static> {
    mode.with_acls(Acls::anyone_all())
}

fn persistent() -> CreateOptions<'static> {
    open(CreateMode::Persistent)
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn kind(event: &WatchedEvent) -> (EventType, &str) {
    (event.event_type, event.path.as_str())
}

/// Asserts that no event arrives on `watcher` for a short while.
async fn assert_quiet(watcher: &mut PersistentWatcher) {
    if let Ok(event) = tokio::time::timeout(ms(300), watcher.changed()).await {
        panic!("unexpected event {event:?}");
    }
}

/// Polls until `path` no longer exists; returns how long that took.
async fn wait_gone(client: &Client, path: &str, bound: Duration) -> Duration {
    let start = Instant::now();
    loop {
        if t!(client.check_stat(path)).unwrap().is_none() {
            return start.elapsed();
        }
        assert!(start.elapsed() < bound, "{path} still exists after {bound:?}");
        tokio::time::sleep(ms(20)).await;
    }
}

/// Stat of a node that was just created and never modified.
fn assert_fresh(stat: &Stat, data_len: i32, owner: i64) {
    assert!(stat.czxid > 0, "{stat:?}");
    assert_eq!(stat.mzxid, stat.czxid, "{stat:?}");
    assert_eq!(stat.pzxid, stat.czxid, "{stat:?}");
    assert_eq!(stat.mtime, stat.ctime, "{stat:?}");
    assert_eq!(stat.version, 0, "{stat:?}");
    assert_eq!(stat.cversion, 0, "{stat:?}");
    assert_eq!(stat.aversion, 0, "{stat:?}");
    assert_eq!(stat.ephemeral_owner, owner, "{stat:?}");
    assert_eq!(stat.data_length, data_len, "{stat:?}");
    assert_eq!(stat.num_children, 0, "{stat:?}");
    let now = now_ms();
    assert!((now - 60_000..=now + 1_000).contains(&stat.ctime), "ctime {} vs now {now}", stat.ctime);
}

/// A loopback TCP relay in front of the server, so a test can cut the
/// client's connection (and refuse new ones for a while) without touching
/// the server.
struct Relay {
    addr: String,
    open: Arc<AtomicBool>,
    cut: tokio::sync::watch::Sender<u64>,
}

impl Relay {
    async fn start(target: &str) -> Relay {
        let listener = t!(TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let open = Arc::new(AtomicBool::new(true));
        let (cut, cut_rx) = tokio::sync::watch::channel(0u64);
        let target = target.to_string();
        let accepting = open.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !accepting.load(Ordering::SeqCst) {
                    continue; // dropped: the client sees the connection closed
                }
                let target = target.clone();
                let mut cut_rx = cut_rx.clone();
                cut_rx.borrow_and_update();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut_rx.changed() => {}
                    }
                });
            }
        });
        Relay { addr, open, cut }
    }

    /// Closes every relayed connection and refuses new ones.
    fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        self.cut.send_modify(|generation| *generation += 1);
    }

    fn reopen(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

// ---------------------------------------------------------------------------
// Sessions
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_negotiates_session_timeout_within_tick_bounds() {
    // tickTime 200: ZooKeeper clamps to [2 * tickTime, 20 * tickTime] = [400, 4000].
    let addr = server().await;
    let a = connect(&addr).await;
    assert_ne!(a.session_id().0, 0);
    assert_eq!(a.state(), SessionState::SyncConnected);
    assert!(!a.session().is_readonly());
    // The client asks for 6s by default.
    assert_eq!(a.session_timeout(), ms(4000));
    let b = connect(&addr).await;
    assert_ne!(b.session_id().0, 0);
    assert_ne!(b.session_id(), a.session_id());
    for (requested, negotiated) in [(1000, 1000), (100, 400), (399, 400), (400, 400), (4000, 4000), (60_000, 4000)] {
        let c = t!(Client::connector().with_session_timeout(ms(requested)).connect(&addr)).unwrap();
        assert_eq!(c.session_timeout(), ms(negotiated), "requested {requested}ms");
        assert_ne!(c.session_id().0, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negotiated_timeout_follows_tick_time_and_configured_bounds() {
    let addr = server_with(&[("tickTime", "2000")], &[]).await;
    for (requested, negotiated) in [(6000, 6000), (1000, 4000), (100_000, 40_000)] {
        let c = t!(Client::connector().with_session_timeout(ms(requested)).connect(&addr)).unwrap();
        assert_eq!(c.session_timeout(), ms(negotiated), "tickTime 2000, requested {requested}ms");
    }
    let addr = server_with(&[("minSessionTimeout", "1000"), ("maxSessionTimeout", "3000")], &[]).await;
    for (requested, negotiated) in [(500, 1000), (2500, 2500), (10_000, 3000)] {
        let c = t!(Client::connector().with_session_timeout(ms(requested)).connect(&addr)).unwrap();
        assert_eq!(c.session_timeout(), ms(negotiated), "min 1000 max 3000, requested {requested}ms");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_client_deletes_its_ephemerals_at_once() {
    let addr = server().await;
    let observer = connect(&addr).await;
    let closer = connect(&addr).await;
    assert_eq!(closer.session_timeout(), ms(4000));
    t!(closer.create("/closing", b"", &open(CreateMode::Ephemeral))).unwrap();
    let session = closer.session().clone();
    let (stat, watcher) = t!(observer.check_and_watch_stat("/closing")).unwrap();
    assert_eq!(stat.unwrap().ephemeral_owner, closer.session_id().0);
    let dropped = Instant::now();
    drop(closer); // not detached: the client sends closeSession
    let event = t!(watcher.changed());
    assert_eq!(kind(&event), (EventType::NodeDeleted, "/closing"));
    // Well before the 4s session timeout: this was closeSession, not expiry.
    assert!(dropped.elapsed() < ms(2500), "ephemeral deleted only after {:?}", dropped.elapsed());
    assert_eq!(t!(observer.check_stat("/closing")).unwrap(), None);
    // A closed session cannot be resumed.
    let resumed = t!(Client::connector().with_session(session).connect(&addr));
    assert_eq!(resumed.unwrap_err(), Error::SessionExpired);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_expires_after_connection_loss_and_its_ephemerals_go() {
    let addr = server().await;
    let observer = connect(&addr).await;
    // Detached: dropping the client closes the TCP connection without closeSession.
    let doomed = t!(Client::connector().with_session_timeout(ms(1000)).with_detached().connect(&addr)).unwrap();
    assert_eq!(doomed.session_timeout(), ms(1000));
    let (stat, _) = t!(doomed.create("/doomed", b"x", &open(CreateMode::Ephemeral))).unwrap();
    assert_eq!(stat.ephemeral_owner, doomed.session_id().0);
    let session = doomed.session().clone();
    let (seen, watcher) = t!(observer.check_and_watch_stat("/doomed")).unwrap();
    assert_eq!(seen, Some(stat));
    let dropped = Instant::now();
    drop(doomed);
    let event = t!(watcher.changed());
    let elapsed = dropped.elapsed();
    assert_eq!(kind(&event), (EventType::NodeDeleted, "/doomed"));
    // The server may only expire the session once the timeout has run out
    // (minus at most one client ping interval since the last packet).
    assert!(elapsed >= ms(700), "ephemeral of a 1000ms session deleted after only {elapsed:?}");
    assert!(elapsed < ms(5000), "ephemeral of a 1000ms session deleted after {elapsed:?}");
    assert_eq!(t!(observer.check_stat("/doomed")).unwrap(), None);
    let resumed = t!(Client::connector().with_session(session).connect(&addr));
    assert_eq!(resumed.unwrap_err(), Error::SessionExpired);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_with_session_keeps_session_and_ephemerals() {
    let addr = server().await;
    let observer = connect(&addr).await;
    let first = t!(Client::connector().with_detached().connect(&addr)).unwrap();
    let id = first.session_id();
    t!(first.create("/kept", b"v1", &open(CreateMode::Ephemeral))).unwrap();
    let info = first.session().clone();
    drop(first); // detached: connection drops, session lives on
    let second = t!(Client::connector().with_session(info).connect(&addr)).unwrap();
    assert_eq!(second.session_id(), id);
    assert_eq!(second.session_timeout(), ms(4000));
    assert_eq!(second.state(), SessionState::SyncConnected);
    let (data, stat) = t!(second.get_data("/kept")).unwrap();
    assert_eq!(data, b"v1");
    assert_eq!(stat.ephemeral_owner, id.0);
    assert_eq!(t!(second.list_ephemerals("/")).unwrap(), vec!["/kept".to_string()]);
    let stat = t!(second.set_data("/kept", b"v2", Some(0))).unwrap();
    assert_eq!(stat.version, 1);
    // Still there well after the connection of `first` went away.
    tokio::time::sleep(ms(600)).await;
    assert!(t!(observer.check_stat("/kept")).unwrap().is_some());
    drop(second);
    wait_gone(&observer, "/kept", ms(2500)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_loss_resumes_session_and_restores_watches() {
    let addr = server().await;
    let relay = Relay::start(&addr).await;
    let w = connect(&relay.addr).await;
    let c = connect(&addr).await;
    let id = w.session_id();
    let mut state = w.state_watcher();
    for path in ["/changed", "/deleted", "/parent", "/same", "/r"] {
        t!(c.create(path, b"", &persistent())).unwrap();
    }
    t!(w.create("/mine", b"", &open(CreateMode::Ephemeral))).unwrap();
    let (_, _, changed) = t!(w.get_and_watch_data("/changed")).unwrap();
    let (_, deleted) = t!(w.check_and_watch_stat("/deleted")).unwrap();
    let (_, created) = t!(w.check_and_watch_stat("/created")).unwrap();
    let (_, children) = t!(w.list_and_watch_children("/parent")).unwrap();
    let (_, _, same) = t!(w.get_and_watch_data("/same")).unwrap();
    let mut recursive = t!(w.watch("/r", AddWatchMode::PersistentRecursive)).unwrap();

    relay.cut();
    assert_eq!(t!(state.changed()), SessionState::Disconnected);
    let event = t!(recursive.changed());
    assert_eq!((event.event_type, event.session_state), (EventType::Session, SessionState::Disconnected));
    // Changes made while the watcher is away.
    t!(c.set_data("/changed", b"x", None)).unwrap();
    t!(c.delete("/deleted", None)).unwrap();
    t!(c.create("/created", b"", &persistent())).unwrap();
    t!(c.create("/parent/kid", b"", &persistent())).unwrap();
    t!(c.create("/r/missed", b"", &persistent())).unwrap();
    tokio::time::sleep(ms(300)).await;
    relay.reopen();

    assert_eq!(t!(state.changed()), SessionState::SyncConnected);
    assert_eq!(w.session_id(), id);
    // SetWatches: the server reports what changed since the client's last
    // zxid, in events without a zxid (WatchedEvent.NO_ZXID).
    let events = [t!(changed.changed()), t!(deleted.changed()), t!(created.changed()), t!(children.changed())];
    assert_eq!(kind(&events[0]), (EventType::NodeDataChanged, "/changed"));
    assert_eq!(kind(&events[1]), (EventType::NodeDeleted, "/deleted"));
    assert_eq!(kind(&events[2]), (EventType::NodeCreated, "/created"));
    assert_eq!(kind(&events[3]), (EventType::NodeChildrenChanged, "/parent"));
    for event in &events {
        assert_eq!(event.zxid, WatchedEvent::NO_ZXID, "{event:?}");
    }
    let event = t!(recursive.changed());
    assert_eq!((event.event_type, event.session_state), (EventType::Session, SessionState::SyncConnected));
    // Unchanged watches are re-armed.
    t!(c.set_data("/same", b"y", None)).unwrap();
    assert_eq!(kind(&t!(same.changed())), (EventType::NodeDataChanged, "/same"));
    // Persistent watches are not checked after the reconnect: zookeeper-client
    // 0.11.2 re-sends only data/exist/child watches (`resend_watches` never
    // raises its index to SetWatches2), so no server could restore them.
    // Same session: its ephemeral survived and it can still write.
    assert_eq!(t!(c.check_stat("/mine")).unwrap().unwrap().ephemeral_owner, id.0);
    assert_eq!(t!(w.list_ephemerals("/")).unwrap(), ["/mine"]);
    t!(w.set_data("/mine", b"still", None)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_expires_while_disconnected() {
    let addr = server().await;
    let relay = Relay::start(&addr).await;
    let observer = connect(&addr).await;
    let w = t!(Client::connector().with_session_timeout(ms(1000)).connect(&relay.addr)).unwrap();
    let mut state = w.state_watcher();
    t!(w.create("/lost", b"", &open(CreateMode::Ephemeral))).unwrap();
    let (_, _, watcher) = t!(w.get_and_watch_data("/lost")).unwrap();
    let (_, gone) = t!(observer.check_and_watch_stat("/lost")).unwrap();
    relay.cut();
    assert_eq!(kind(&t!(gone.changed())), (EventType::NodeDeleted, "/lost"));
    relay.reopen();
    loop {
        match t!(state.changed()) {
            SessionState::Expired => break,
            SessionState::Disconnected => continue,
            other => panic!("unexpected state {other:?}"),
        }
    }
    let event = t!(watcher.changed());
    assert_eq!((event.event_type, event.session_state), (EventType::Session, SessionState::Expired));
    assert_eq!(t!(w.check_stat("/")).unwrap_err(), Error::SessionExpired);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_with_unknown_scheme_fails_the_session() {
    let addr = server().await;
    let c = connect(&addr).await;
    let mut state = c.state_watcher();
    assert_eq!(t!(c.auth("no-such-scheme", b"whatever")).unwrap_err(), Error::AuthFailed);
    let mut last = c.state();
    while last != SessionState::AuthFailed {
        last = t!(state.changed());
        assert!(!matches!(last, SessionState::Expired | SessionState::Closed), "state {last:?}");
    }
    assert_eq!(t!(c.check_stat("/")).unwrap_err(), Error::AuthFailed);
}

// ---------------------------------------------------------------------------
// Create modes
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_persistent_stat_and_errors() {
    let addr = server().await;
    let c = connect(&addr).await;
    let (stat, seq) = t!(c.create("/a", b"hello", &persistent())).unwrap();
    assert_eq!(seq.into_i64(), -1);
    assert_fresh(&stat, 5, 0);
    let (data, got) = t!(c.get_data("/a")).unwrap();
    assert_eq!(data, b"hello");
    assert_eq!(got, stat);
    assert_eq!(t!(c.check_stat("/a")).unwrap(), Some(stat));

    // Consecutive writes of one session get consecutive zxids.
    let (child, _) = t!(c.create("/a/b", b"", &persistent())).unwrap();
    assert_fresh(&child, 0, 0);
    assert_eq!(child.czxid, stat.czxid + 1);
    let (data, _) = t!(c.get_data("/a/b")).unwrap();
    assert!(data.is_empty());

    let parent = t!(c.check_stat("/a")).unwrap().unwrap();
    assert_eq!(parent.cversion, 1);
    assert_eq!(parent.num_children, 1);
    assert_eq!(parent.pzxid, child.czxid);
    assert_eq!(parent.version, 0);
    assert_eq!(parent.mzxid, stat.mzxid);
    assert_eq!(parent.czxid, stat.czxid);

    assert_eq!(t!(c.create("/a", b"again", &persistent())).unwrap_err(), Error::NodeExists);
    assert_eq!(t!(c.create("/missing/child", b"", &persistent())).unwrap_err(), Error::NoNode);
    assert_eq!(t!(c.check_stat("/missing")).unwrap(), None);
    assert_eq!(t!(c.get_data("/missing")).unwrap_err(), Error::NoNode);
    // The failed create did not touch the data.
    assert_eq!(t!(c.get_data("/a")).unwrap().0, b"hello");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_suffix_is_parent_cversion_in_ten_digits() {
    let addr = server().await;
    let c = connect(&addr).await;
    t!(c.create("/seq", b"", &persistent())).unwrap();
    let seq_mode = open(CreateMode::PersistentSequential);

    let (s0, n0) = t!(c.create("/seq/n-", b"zero", &seq_mode)).unwrap();
    assert_eq!(n0.into_i64(), 0);
    assert_eq!(n0.to_string(), "0000000000");
    assert_fresh(&s0, 4, 0);

    // ZooKeeper stores cversion as the number of child creates and serves
    // 2 * creates - children (creates + deletes); the suffix is the stored count.
    t!(c.create("/seq/plain", b"", &persistent())).unwrap(); // creates: 2
    t!(c.delete("/seq/plain", None)).unwrap(); // creates stay 2
    let parent = t!(c.check_stat("/seq")).unwrap().unwrap();
    assert_eq!((parent.cversion, parent.num_children), (3, 1));

    let (_, n2) = t!(c.create("/seq/n-", b"", &seq_mode)).unwrap();
    assert_eq!(n2.into_i64(), 2);
    // An empty name: the node is named by the suffix alone.
    let (_, n3) = t!(c.create("/seq/", b"", &seq_mode)).unwrap();
    assert_eq!(n3.into_i64(), 3);

    let (children, parent) = t!(c.get_children("/seq")).unwrap();
    assert_eq!(sorted(children), ["0000000003", "n-0000000000", "n-0000000002"]);
    assert_eq!(parent.cversion, 5);
    assert_eq!(parent.num_children, 3);
    assert_eq!(t!(c.get_data("/seq/n-0000000000")).unwrap().0, b"zero");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ephemeral_and_ephemeral_sequential_nodes() {
    let addr = server().await;
    let c = connect(&addr).await;
    let other = connect(&addr).await;
    let sid = c.session_id().0;

    let (e, seq) = t!(c.create("/e", b"eph", &open(CreateMode::Ephemeral))).unwrap();
    assert_eq!(seq.into_i64(), -1);
    assert_fresh(&e, 3, sid);
    assert_eq!(t!(c.create("/e/child", b"", &persistent())).unwrap_err(), Error::NoChildrenForEphemerals);
    assert_eq!(
        t!(c.create("/e/child", b"", &open(CreateMode::Ephemeral))).unwrap_err(),
        Error::NoChildrenForEphemerals
    );
    // The owner is visible to every session.
    assert_eq!(t!(other.check_stat("/e")).unwrap().unwrap().ephemeral_owner, sid);

    t!(c.create("/eph", b"", &persistent())).unwrap();
    let eseq = open(CreateMode::EphemeralSequential);
    let (s0, n0) = t!(c.create("/eph/n-", b"", &eseq)).unwrap();
    assert_eq!(n0.to_string(), "0000000000");
    assert_fresh(&s0, 0, sid);
    t!(c.create("/eph/e", b"", &open(CreateMode::Ephemeral))).unwrap();
    let (_, n2) = t!(c.create("/eph/n-", b"", &eseq)).unwrap();
    assert_eq!(n2.to_string(), "0000000002");
    t!(other.create("/eph/theirs", b"", &open(CreateMode::Ephemeral))).unwrap();

    // getEphemerals: this session's ephemerals whose path starts with the prefix (plain string prefix).
    let all = ["/e", "/eph/e", "/eph/n-0000000000", "/eph/n-0000000002"];
    assert_eq!(sorted(t!(c.list_ephemerals("/")).unwrap()), all);
    assert_eq!(sorted(t!(c.list_ephemerals("/e")).unwrap()), all);
    assert_eq!(sorted(t!(c.list_ephemerals("/eph/n")).unwrap()), ["/eph/n-0000000000", "/eph/n-0000000002"]);
    assert_eq!(t!(c.list_ephemerals("/nothing")).unwrap(), Vec::<String>::new());
    assert_eq!(t!(other.list_ephemerals("/")).unwrap(), ["/eph/theirs"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_node_reports_no_ephemeral_owner() {
    let addr = server().await;
    let c = connect(&addr).await;
    let (stat, seq) = t!(c.create("/box", b"c", &open(CreateMode::Container))).unwrap();
    assert_eq!(seq.into_i64(), -1);
    // Stored with owner Long.MIN_VALUE, but DataNode.copyStat reports 0 for
    // anything that is not a plain ephemeral.
    assert_fresh(&stat, 1, 0);
    assert_eq!(t!(c.check_stat("/box")).unwrap(), Some(stat));
    let (child, _) = t!(c.create("/box/item", b"", &persistent())).unwrap();
    assert_fresh(&child, 0, 0);
    let parent = t!(c.check_stat("/box")).unwrap().unwrap();
    assert_eq!(parent.num_children, 1);
    assert_eq!(parent.ephemeral_owner, 0);
    assert_eq!(t!(c.list_ephemerals("/")).unwrap(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_nodes_with_extended_types_enabled() {
    let addr = server_with(&[], &[("zookeeper.extendedTypesEnabled", "true")]).await;
    let c = connect(&addr).await;
    // Stored with owner 0xff0000<ttl>, reported as 0 (DataNode.copyStat).
    let (stat, seq) = t!(c.create("/ttl", b"t", &persistent().with_ttl(ms(5000)))).unwrap();
    assert_eq!(seq.into_i64(), -1);
    assert_fresh(&stat, 1, 0);
    assert_eq!(t!(c.get_data("/ttl")).unwrap(), (b"t".to_vec(), stat));

    t!(c.create("/tseq", b"", &persistent())).unwrap();
    let mode = open(CreateMode::PersistentSequential).with_ttl(ms(60_000));
    let (s0, n0) = t!(c.create("/tseq/n-", b"", &mode)).unwrap();
    assert_eq!(n0.to_string(), "0000000000");
    assert_fresh(&s0, 0, 0);
    let (_, n1) = t!(c.create("/tseq/n-", b"", &mode)).unwrap();
    assert_eq!(n1.to_string(), "0000000001");
    // TTL nodes may have children, like any persistent node.
    t!(c.create("/ttl/child", b"", &persistent())).unwrap();
    assert_eq!(t!(c.list_ephemerals("/")).unwrap(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_node_without_extended_types_is_unimplemented() {
    let addr = server().await;
    let c = connect(&addr).await;
    let err = t!(c.create("/ttl", b"", &persistent().with_ttl(ms(5000)))).unwrap_err();
    assert_eq!(err, Error::Unimplemented);
    assert_eq!(t!(c.check_stat("/ttl")).unwrap(), None);
    // The session is still usable.
    t!(c.create("/plain", b"", &persistent())).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emptied_container_is_reaped_and_never_used_one_stays() {
    let addr = server_with(&[], &[("znode.container.checkIntervalMs", "100")]).await;
    let c = connect(&addr).await;
    t!(c.create("/box", b"", &open(CreateMode::Container))).unwrap();
    t!(c.create("/unused", b"", &open(CreateMode::Container))).unwrap();
    t!(c.create("/box/item", b"", &persistent())).unwrap();
    tokio::time::sleep(ms(500)).await;
    assert!(t!(c.check_stat("/box")).unwrap().is_some(), "container with a child was reaped");
    let (_, watcher) = t!(c.check_and_watch_stat("/box")).unwrap();
    t!(c.delete("/box/item", None)).unwrap();
    assert_eq!(kind(&t!(watcher.changed())), (EventType::NodeDeleted, "/box"));
    assert_eq!(t!(c.check_stat("/box")).unwrap(), None);
    // A container that never had a child is left alone.
    assert!(t!(c.check_stat("/unused")).unwrap().is_some(), "never-used container was reaped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_node_is_reaped_once_ttl_passed_without_children() {
    let addr =
        server_with(&[], &[("zookeeper.extendedTypesEnabled", "true"), ("znode.container.checkIntervalMs", "100")])
            .await;
    let c = connect(&addr).await;
    t!(c.create("/parent", b"", &persistent().with_ttl(ms(200)))).unwrap();
    t!(c.create("/parent/child", b"", &persistent())).unwrap();
    t!(c.create("/plain", b"", &persistent())).unwrap();
    t!(c.create("/short", b"", &persistent().with_ttl(ms(600)))).unwrap();
    let created = Instant::now();
    assert!(t!(c.check_stat("/short")).unwrap().is_some());
    wait_gone(&c, "/short", STEP).await;
    let lived = created.elapsed();
    // Reaped only once mtime + ttl has passed.
    assert!(lived >= ms(500), "ttl 600ms node gone after {lived:?}");
    // A TTL node with a child stays; once empty and past its ttl, it goes.
    assert!(t!(c.check_stat("/parent")).unwrap().is_some(), "TTL node with a child was reaped");
    t!(c.delete("/parent/child", None)).unwrap();
    wait_gone(&c, "/parent", STEP).await;
    assert!(t!(c.check_stat("/plain")).unwrap().is_some());
}

// ---------------------------------------------------------------------------
// Data, delete, children
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_data_with_versions() {
    let addr = server().await;
    let c = connect(&addr).await;
    let (created, _) = t!(c.create("/v", b"a", &persistent())).unwrap();

    let s1 = t!(c.set_data("/v", b"bb", Some(0))).unwrap();
    assert_eq!(s1.version, 1);
    assert_eq!(s1.data_length, 2);
    assert_eq!(s1.czxid, created.czxid);
    assert_eq!(s1.ctime, created.ctime);
    assert_eq!(s1.mzxid, created.czxid + 1);
    assert!(s1.mtime >= created.ctime);
    assert_eq!(s1.pzxid, created.pzxid);
    assert_eq!((s1.cversion, s1.aversion, s1.num_children, s1.ephemeral_owner), (0, 0, 0, 0));

    assert_eq!(t!(c.set_data("/v", b"x", Some(0))).unwrap_err(), Error::BadVersion);
    assert_eq!(t!(c.set_data("/v", b"x", Some(7))).unwrap_err(), Error::BadVersion);
    let s2 = t!(c.set_data("/v", b"", None)).unwrap();
    assert_eq!(s2.version, 2);
    assert_eq!(s2.data_length, 0);
    let s3 = t!(c.set_data("/v", b"ccc", Some(2))).unwrap();
    assert_eq!(s3.version, 3);
    let (data, stat) = t!(c.get_data("/v")).unwrap();
    assert_eq!(data, b"ccc");
    assert_eq!(stat, s3);
    assert_eq!(t!(c.set_data("/missing", b"x", None)).unwrap_err(), Error::NoNode);
    assert_eq!(t!(c.set_data("/missing", b"x", Some(0))).unwrap_err(), Error::NoNode);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_errors_and_versions() {
    let addr = server().await;
    let c = connect(&addr).await;
    t!(c.create("/d", b"", &persistent())).unwrap();
    let (child, _) = t!(c.create("/d/c", b"", &persistent())).unwrap();
    t!(c.set_data("/d/c", b"1", None)).unwrap();

    assert_eq!(t!(c.delete("/d", None)).unwrap_err(), Error::NotEmpty);
    assert_eq!(t!(c.delete("/d/c", Some(0))).unwrap_err(), Error::BadVersion);
    assert!(t!(c.check_stat("/d/c")).unwrap().is_some());
    t!(c.delete("/d/c", Some(1))).unwrap();
    assert_eq!(t!(c.delete("/d/c", None)).unwrap_err(), Error::NoNode);
    assert_eq!(t!(c.delete("/missing", None)).unwrap_err(), Error::NoNode);
    assert_eq!(t!(c.delete("/missing/deeper", Some(3))).unwrap_err(), Error::NoNode);

    let parent = t!(c.check_stat("/d")).unwrap().unwrap();
    assert_eq!(parent.num_children, 0);
    assert_eq!(parent.cversion, 2, "served cversion counts the create and the delete");
    assert!(parent.pzxid > child.czxid, "a delete moves the parent's pzxid");
    t!(c.delete("/d", Some(0))).unwrap();
    assert_eq!(t!(c.check_stat("/d")).unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_writes_consume_a_zxid() {
    // ZooKeeper turns a failed write into an error txn that takes the next zxid.
    let addr = server().await;
    let c = connect(&addr).await;
    let (a, _) = t!(c.create("/z", b"", &persistent())).unwrap();
    assert_eq!(t!(c.create("/z", b"", &persistent())).unwrap_err(), Error::NodeExists);
    let (b, _) = t!(c.create("/z1", b"", &persistent())).unwrap();
    assert_eq!(b.czxid, a.czxid + 2);
    assert_eq!(t!(c.set_data("/z", b"", Some(9))).unwrap_err(), Error::BadVersion);
    assert_eq!(t!(c.delete("/nope", None)).unwrap_err(), Error::NoNode);
    let s = t!(c.set_data("/z", b"x", None)).unwrap();
    assert_eq!(s.mzxid, b.czxid + 3);
    // Reads take none.
    t!(c.get_data("/z")).unwrap();
    t!(c.list_children("/")).unwrap();
    let (d, _) = t!(c.create("/z2", b"", &persistent())).unwrap();
    assert_eq!(d.czxid, s.mzxid + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_and_descendant_counts() {
    let addr = server().await;
    let c = connect(&addr).await;
    for path in ["/p", "/p/a", "/p/b", "/p/a/x", "/p/a/y", "/p/a/x/deep"] {
        t!(c.create(path, b"", &persistent())).unwrap();
    }
    assert_eq!(sorted(t!(c.list_children("/p")).unwrap()), ["a", "b"]);
    let (children, stat) = t!(c.get_children("/p")).unwrap();
    assert_eq!(sorted(children), ["a", "b"]);
    let b = t!(c.check_stat("/p/b")).unwrap().unwrap();
    assert_eq!((stat.num_children, stat.cversion, stat.pzxid), (2, 2, b.czxid));
    assert_eq!(t!(c.list_children("/p/b")).unwrap(), Vec::<String>::new());

    assert_eq!(t!(c.count_descendants_number("/p")).unwrap(), 5);
    assert_eq!(t!(c.count_descendants_number("/p/a")).unwrap(), 3);
    assert_eq!(t!(c.count_descendants_number("/p/a/x")).unwrap(), 1);
    assert_eq!(t!(c.count_descendants_number("/p/b")).unwrap(), 0);
    // A sibling sharing the prefix is not a descendant.
    t!(c.create("/pp", b"", &persistent())).unwrap();
    assert_eq!(t!(c.count_descendants_number("/p")).unwrap(), 5);

    assert_eq!(t!(c.list_children("/missing")).unwrap_err(), Error::NoNode);
    assert_eq!(t!(c.get_children("/missing")).unwrap_err(), Error::NoNode);
    assert_eq!(t!(c.count_descendants_number("/missing")).unwrap_err(), Error::NoNode);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zookeeper_system_nodes_are_counted_from_root() {
    let addr = server().await;
    let c = connect(&addr).await;
    // A fresh 3.9 tree holds /zookeeper, /zookeeper/quota and /zookeeper/config.
    assert_eq!(sorted(t!(c.list_children("/zookeeper")).unwrap()), ["config", "quota"]);
    assert_eq!(t!(c.list_children("/")).unwrap(), ["zookeeper"]);
    assert_eq!(t!(c.count_descendants_number("/")).unwrap(), 3);
    t!(c.create("/one", b"", &persistent())).unwrap();
    t!(c.create("/one/two", b"", &persistent())).unwrap();
    assert_eq!(t!(c.count_descendants_number("/")).unwrap(), 5);
    assert_eq!(t!(c.count_descendants_number("/zookeeper")).unwrap(), 2);
}

/// Stat of a node built into the tree at startup (zeroed `StatPersisted`).
fn builtin_stat(cversion: i32, aversion: i32, num_children: i32) -> Stat {
    Stat {
        czxid: 0,
        mzxid: 0,
        pzxid: 0,
        ctime: 0,
        mtime: 0,
        version: 0,
        cversion,
        aversion,
        ephemeral_owner: 0,
        data_length: 0,
        num_children,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builtin_nodes_have_zero_stats_and_open_acls() {
    let addr = server().await;
    let c = connect(&addr).await;
    // Reported cversion is 2 * creates - children, and nothing was ever
    // created under these: / reports -1, /zookeeper -2.
    assert_eq!(t!(c.check_stat("/")).unwrap(), Some(builtin_stat(-1, 0, 1)));
    assert_eq!(t!(c.check_stat("/zookeeper")).unwrap(), Some(builtin_stat(-2, 0, 2)));
    assert_eq!(t!(c.check_stat("/zookeeper/quota")).unwrap(), Some(builtin_stat(0, 0, 0)));
    let (data, stat) = t!(c.get_data("/")).unwrap();
    assert!(data.is_empty());
    assert_eq!(stat, builtin_stat(-1, 0, 1));
    let anyone_all = [Acl::new(Permission::ALL, AuthId::anyone())];
    assert_eq!(t!(c.get_acl("/")).unwrap(), (anyone_all.to_vec(), builtin_stat(-1, 0, 1)));
    assert_eq!(t!(c.get_acl("/zookeeper")).unwrap().0, anyone_all);
    assert_eq!(t!(c.get_acl("/zookeeper/quota")).unwrap().0, anyone_all);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_node_is_read_only_and_empty_in_standalone() {
    let addr = server().await;
    let c = connect(&addr).await;
    // DataTree.addConfigNode: setACL(READ_ACL_UNSAFE, version -1) stores aversion -1.
    let (data, stat) = t!(c.get_config()).unwrap();
    assert!(data.is_empty());
    assert_eq!(stat, builtin_stat(0, -1, 0));
    let (acl, acl_stat) = t!(c.get_acl("/zookeeper/config")).unwrap();
    assert_eq!(acl, [Acl::new(Permission::READ, AuthId::anyone())]);
    assert_eq!(acl_stat, stat);
    assert_eq!(t!(c.set_data("/zookeeper/config", b"x", None)).unwrap_err(), Error::NoAuth);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builtin_nodes_cannot_be_deleted() {
    let addr = server().await;
    let c = connect(&addr).await;
    for path in ["/zookeeper", "/zookeeper/quota", "/zookeeper/config"] {
        assert_eq!(t!(c.delete(path, None)).unwrap_err(), Error::BadArguments(&"server error"), "{path}");
    }
    assert!(t!(c.check_stat("/zookeeper/quota")).unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_children_and_sequence_start_from_the_stored_count() {
    let addr = server().await;
    let c = connect(&addr).await;
    let (x, _) = t!(c.create("/x", b"", &persistent())).unwrap();
    let root = t!(c.check_stat("/")).unwrap().unwrap();
    // One create stored, two children: 2 * 1 - 2.
    assert_eq!((root.cversion, root.num_children, root.pzxid), (0, 2, x.czxid));
    assert_eq!((root.czxid, root.mzxid, root.version), (0, 0, 0));
    let (_, n) = t!(c.create("/s-", b"", &open(CreateMode::PersistentSequential))).unwrap();
    assert_eq!(n.to_string(), "0000000001");
    assert_eq!(sorted(t!(c.list_children("/")).unwrap()), ["s-0000000001", "x", "zookeeper"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_answers_for_existing_and_missing_paths() {
    let addr = server().await;
    let c = connect(&addr).await;
    let other = connect(&addr).await;
    t!(other.create("/synced", b"fresh", &persistent())).unwrap();
    t!(c.sync("/synced")).unwrap();
    assert_eq!(t!(c.get_data("/synced")).unwrap().0, b"fresh");
    t!(c.sync("/")).unwrap();
    // sync does not look the path up.
    t!(c.sync("/does/not/exist")).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chrooted_client_sees_relative_paths() {
    let addr = server().await;
    let root = connect(&addr).await;
    t!(root.create("/app", b"", &persistent())).unwrap();
    let c = t!(Client::connect(&format!("{addr}/app"))).unwrap();
    assert_eq!(c.path(), "/app");
    t!(c.create("/x", b"1", &persistent())).unwrap();
    assert_eq!(t!(root.get_data("/app/x")).unwrap().0, b"1");
    let (_, n) = t!(c.create("/s-", b"", &open(CreateMode::PersistentSequential))).unwrap();
    assert_eq!(n.to_string(), "0000000001");
    assert_eq!(sorted(t!(c.list_children("/")).unwrap()), ["s-0000000001", "x"]);
    t!(c.create("/e", b"", &open(CreateMode::Ephemeral))).unwrap();
    assert_eq!(t!(c.list_ephemerals("/")).unwrap(), ["/e"]);
    let (_, _, watcher) = t!(c.get_and_watch_data("/x")).unwrap();
    t!(root.set_data("/app/x", b"2", None)).unwrap();
    assert_eq!(kind(&t!(watcher.changed())), (EventType::NodeDataChanged, "/x"));
    let mut w = c.new_multi_writer();
    w.add_create("/m", b"", &persistent()).unwrap();
    let results = t!(w.commit()).unwrap();
    let [MultiWriteResult::Create { path, .. }] = results.as_slice() else { panic!("{results:?}") };
    assert_eq!(path, "/m");
    assert!(t!(root.check_stat("/app/m")).unwrap().is_some());
}

// ---------------------------------------------------------------------------
// ACLs and authentication
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_am_i_lists_ip_then_digest_identities() {
    let addr = server().await;
    let c = connect(&addr).await;
    assert_eq!(t!(c.list_auth_users()).unwrap(), [AuthUser::new("ip", "127.0.0.1")]);
    t!(c.auth("digest", b"user:pw")).unwrap();
    assert_eq!(t!(c.list_auth_users()).unwrap(), [AuthUser::new("ip", "127.0.0.1"), AuthUser::new("digest", "user")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_acl_guards_node_from_other_sessions() {
    let addr = server().await;
    let owner = connect(&addr).await;
    let stranger = connect(&addr).await;
    let impostor = connect(&addr).await;
    t!(owner.auth("digest", b"user:pw")).unwrap();
    t!(impostor.auth("digest", b"user:wrong")).unwrap();

    // creator_all = (auth, "") expands to the session's authenticated ids.
    let (stat, _) =
        t!(owner.create("/secure", b"secret", &CreateMode::Persistent.with_acls(Acls::creator_all()))).unwrap();
    let user_all = Acl::new(Permission::ALL, AuthId::new("digest", USER_DIGEST_ID));
    let (acl, acl_stat) = t!(owner.get_acl("/secure")).unwrap();
    assert_eq!(acl, std::slice::from_ref(&user_all));
    assert_eq!(acl_stat, stat);
    assert_eq!(t!(owner.get_data("/secure")).unwrap().0, b"secret");

    for other in [&stranger, &impostor] {
        assert_eq!(t!(other.get_data("/secure")).unwrap_err(), Error::NoAuth);
        assert_eq!(t!(other.set_data("/secure", b"x", None)).unwrap_err(), Error::NoAuth);
        assert_eq!(t!(other.get_acl("/secure")).unwrap_err(), Error::NoAuth);
        assert_eq!(t!(other.list_children("/secure")).unwrap_err(), Error::NoAuth);
        assert_eq!(t!(other.get_children("/secure")).unwrap_err(), Error::NoAuth);
        assert_eq!(t!(other.count_descendants_number("/secure")).unwrap_err(), Error::NoAuth);
        assert_eq!(t!(other.create("/secure/c", b"", &persistent())).unwrap_err(), Error::NoAuth);
        assert_eq!(t!(other.set_acl("/secure", &Acls::anyone_all(), None)).unwrap_err(), Error::NoAuth);
        // 3.9 checks READ on exists too (ZOOKEEPER-2590), but not for a missing node.
        assert_eq!(t!(other.check_stat("/secure")).unwrap_err(), Error::NoAuth);
        assert_eq!(t!(other.check_stat("/secure/none")).unwrap(), None);
        let mut reader = other.new_multi_reader();
        reader.add_get_data("/secure").unwrap();
        let results = t!(reader.commit()).unwrap();
        let [MultiReadResult::Error { err }] = results.as_slice() else { panic!("{results:?}") };
        assert_eq!(*err, Error::NoAuth);
    }

    // Open reading; only the owner keeps the rest.
    let everyone_read = Acl::new(Permission::READ, AuthId::anyone());
    let new_acl = [user_all.clone(), everyone_read.clone()];
    let set = t!(owner.set_acl("/secure", &new_acl, Some(0))).unwrap();
    assert_eq!(set.aversion, 1);
    assert_eq!(set.version, 0);
    assert_eq!(set.mzxid, stat.mzxid, "setACL does not change mzxid");
    assert_eq!(t!(owner.set_acl("/secure", &new_acl, Some(0))).unwrap_err(), Error::BadVersion);
    let (acl, acl_stat) = t!(owner.get_acl("/secure")).unwrap();
    assert_eq!(acl, new_acl);
    assert_eq!(acl_stat.aversion, 1);

    assert_eq!(t!(stranger.get_data("/secure")).unwrap().0, b"secret");
    assert_eq!(t!(stranger.set_data("/secure", b"x", None)).unwrap_err(), Error::NoAuth);
    // Readers without ADMIN see digest ids with the password hash masked.
    let (acl, _) = t!(stranger.get_acl("/secure")).unwrap();
    assert_eq!(acl, [Acl::new(Permission::ALL, AuthId::new("digest", "user:x")), everyone_read.clone()]);
    let (acl, _) = t!(impostor.get_acl("/secure")).unwrap();
    assert_eq!(acl, [Acl::new(Permission::ALL, AuthId::new("digest", "user:x")), everyone_read]);

    let s = t!(owner.set_data("/secure", b"v2", Some(0))).unwrap();
    assert_eq!(s.version, 1);
    assert_eq!(s.aversion, 1);
    t!(owner.delete("/secure", Some(1))).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_needs_delete_permission_on_the_parent() {
    let addr = server().await;
    let owner = connect(&addr).await;
    let stranger = connect(&addr).await;
    t!(owner.auth("digest", b"user:pw")).unwrap();
    let guard_acl = [
        Acl::new(Permission::ALL, AuthId::new("digest", USER_DIGEST_ID)),
        Acl::new(Permission::READ | Permission::CREATE, AuthId::anyone()),
    ];
    t!(owner.create("/guard", b"", &CreateMode::Persistent.with_acls(Acls::new(&guard_acl)))).unwrap();
    t!(owner.create("/guard/c", b"", &persistent())).unwrap();
    // The child itself is open, but deleting it is checked against /guard.
    t!(stranger.set_data("/guard/c", b"changed", None)).unwrap();
    assert_eq!(t!(stranger.delete("/guard/c", None)).unwrap_err(), Error::NoAuth);
    // CREATE is granted on /guard.
    t!(stranger.create("/guard/d", b"", &persistent())).unwrap();
    t!(owner.delete("/guard/c", None)).unwrap();
    t!(owner.delete("/guard/d", None)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_acls_are_rejected() {
    let addr = server().await;
    let c = connect(&addr).await;
    // (auth, "") with no authenticated id on the session.
    let err = t!(c.create("/a", b"", &CreateMode::Persistent.with_acls(Acls::creator_all()))).unwrap_err();
    assert_eq!(err, Error::InvalidAcl);
    let bad_digest = [Acl::new(Permission::ALL, AuthId::new("digest", "no-colon"))];
    let err = t!(c.create("/a", b"", &CreateMode::Persistent.with_acls(Acls::new(&bad_digest)))).unwrap_err();
    assert_eq!(err, Error::InvalidAcl);
    let unknown = [Acl::new(Permission::ALL, AuthId::new("nosuchscheme", "x"))];
    let err = t!(c.create("/a", b"", &CreateMode::Persistent.with_acls(Acls::new(&unknown)))).unwrap_err();
    assert_eq!(err, Error::InvalidAcl);
    assert_eq!(t!(c.check_stat("/a")).unwrap(), None);

    // A digest ACL for someone else is valid, even if it locks the creator out.
    let foreign = [Acl::new(Permission::ALL, AuthId::new("digest", USER_DIGEST_ID))];
    t!(c.create("/foreign", b"", &CreateMode::Persistent.with_acls(Acls::new(&foreign)))).unwrap();
    assert_eq!(t!(c.get_data("/foreign")).unwrap_err(), Error::NoAuth);
    t!(c.auth("digest", b"user:pw")).unwrap();
    assert_eq!(t!(c.get_data("/foreign")).unwrap().0, b"");
    // ... and now creator_all works.
    let (_, _) = t!(c.create("/mine", b"", &CreateMode::Persistent.with_acls(Acls::creator_all()))).unwrap();
    let (acl, _) = t!(c.get_acl("/mine")).unwrap();
    assert_eq!(acl, foreign);
    // setACL with an invalid ACL is refused as well.
    assert_eq!(t!(c.set_acl("/mine", &bad_digest, None)).unwrap_err(), Error::InvalidAcl);
    assert_eq!(t!(c.set_acl("/missing", &foreign, None)).unwrap_err(), Error::NoNode);
}

// ---------------------------------------------------------------------------
// Watches
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oneshot_watches_fire_for_each_kind_of_change() {
    let addr = server().await;
    let w = connect(&addr).await;
    let c = connect(&addr).await;
    t!(c.create("/w", b"0", &persistent())).unwrap();

    // Data changed.
    let (data, _, watcher) = t!(w.get_and_watch_data("/w")).unwrap();
    assert_eq!(data, b"0");
    t!(c.set_data("/w", b"1", None)).unwrap();
    let event = t!(watcher.changed());
    assert_eq!(kind(&event), (EventType::NodeDataChanged, "/w"));
    assert_eq!(event.session_state, SessionState::SyncConnected);

    // Node created, via exists on a missing node.
    let (stat, watcher) = t!(w.check_and_watch_stat("/new")).unwrap();
    assert_eq!(stat, None);
    t!(c.create("/new", b"", &persistent())).unwrap();
    assert_eq!(kind(&t!(watcher.changed())), (EventType::NodeCreated, "/new"));

    // Exists watch on an existing node: data change.
    let (stat, watcher) = t!(w.check_and_watch_stat("/new")).unwrap();
    assert!(stat.is_some());
    t!(c.set_data("/new", b"x", None)).unwrap();
    assert_eq!(kind(&t!(watcher.changed())), (EventType::NodeDataChanged, "/new"));

    // Children changed: a child created, then a child deleted. A data watch
    // on the parent is not triggered by either.
    let (children, watcher) = t!(w.list_and_watch_children("/w")).unwrap();
    assert!(children.is_empty());
    let (_, _, data_watcher) = t!(w.get_and_watch_data("/w")).unwrap();
    t!(c.create("/w/c", b"", &persistent())).unwrap();
    assert_eq!(kind(&t!(watcher.changed())), (EventType::NodeChildrenChanged, "/w"));
    let (children, stat, watcher) = t!(w.get_and_watch_children("/w")).unwrap();
    assert_eq!(children, ["c"]);
    assert_eq!(stat.num_children, 1);
    t!(c.delete("/w/c", None)).unwrap();
    assert_eq!(kind(&t!(watcher.changed())), (EventType::NodeChildrenChanged, "/w"));
    // Grandchildren and the child's data do not concern the parent's child watch.
    t!(c.create("/w/c2", b"", &persistent())).unwrap();
    let (_, watcher) = t!(w.list_and_watch_children("/w")).unwrap();
    t!(c.create("/w/c2/g", b"", &persistent())).unwrap();
    t!(c.set_data("/w/c2", b"d", None)).unwrap();
    t!(c.set_data("/w", b"2", None)).unwrap();
    assert_eq!(kind(&t!(data_watcher.changed())), (EventType::NodeDataChanged, "/w"));
    t!(c.delete("/w/c2/g", None)).unwrap();
    t!(c.delete("/w/c2", None)).unwrap();
    assert_eq!(kind(&t!(watcher.changed())), (EventType::NodeChildrenChanged, "/w"));

    // Node deleted: seen by data, exists and child watches on the node.
    let (_, _, data_watcher) = t!(w.get_and_watch_data("/new")).unwrap();
    let (_, exists_watcher) = t!(w.check_and_watch_stat("/new")).unwrap();
    let (_, child_watcher) = t!(w.list_and_watch_children("/new")).unwrap();
    t!(c.delete("/new", None)).unwrap();
    assert_eq!(kind(&t!(data_watcher.changed())), (EventType::NodeDeleted, "/new"));
    assert_eq!(kind(&t!(exists_watcher.changed())), (EventType::NodeDeleted, "/new"));
    assert_eq!(kind(&t!(child_watcher.changed())), (EventType::NodeDeleted, "/new"));

    // The writer's own change triggers its own watch too.
    let (_, watcher) = t!(c.check_and_watch_stat("/self")).unwrap();
    t!(c.create("/self", b"", &persistent())).unwrap();
    assert_eq!(kind(&t!(watcher.changed())), (EventType::NodeCreated, "/self"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_events_carry_the_zxid_of_their_txn() {
    // ZooKeeper 3.9 (ZOOKEEPER-4655) sends the txn zxid in the notification header.
    let addr = server().await;
    let w = connect(&addr).await;
    let c = connect(&addr).await;
    let (_, watcher) = t!(w.check_and_watch_stat("/z")).unwrap();
    let (created, _) = t!(c.create("/z", b"", &persistent())).unwrap();
    let event = t!(watcher.changed());
    assert_eq!(kind(&event), (EventType::NodeCreated, "/z"));
    assert_eq!(event.zxid, created.czxid);

    let (_, _, watcher) = t!(w.get_and_watch_data("/z")).unwrap();
    let set = t!(c.set_data("/z", b"1", None)).unwrap();
    let event = t!(watcher.changed());
    assert_eq!(event.zxid, set.mzxid);

    let (_, watcher) = t!(w.list_and_watch_children("/z")).unwrap();
    let (child, _) = t!(c.create("/z/c", b"", &persistent())).unwrap();
    let event = t!(watcher.changed());
    assert_eq!(kind(&event), (EventType::NodeChildrenChanged, "/z"));
    assert_eq!(event.zxid, child.czxid);

    let (_, watcher) = t!(w.check_and_watch_stat("/z/c")).unwrap();
    t!(c.delete("/z/c", None)).unwrap();
    let event = t!(watcher.changed());
    let parent = t!(c.check_stat("/z")).unwrap().unwrap();
    assert_eq!(kind(&event), (EventType::NodeDeleted, "/z/c"));
    assert_eq!(event.zxid, parent.pzxid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_watch_sees_node_and_child_list_changes() {
    let addr = server().await;
    let w = connect(&addr).await;
    let c = connect(&addr).await;
    // May be set on a missing node.
    let mut watcher = t!(w.watch("/p", AddWatchMode::Persistent)).unwrap();

    t!(c.create("/p", b"", &persistent())).unwrap();
    assert_eq!(kind(&t!(watcher.changed())), (EventType::NodeCreated, "/p"));
    t!(c.set_data("/p", b"1", None)).unwrap();
    assert_eq!(kind(&t!(watcher.changed())), (EventType::NodeDataChanged, "/p"));
    t!(c.set_data("/p", b"2", None)).unwrap();
    assert_eq!(kind(&t!(watcher.changed())), (EventType::NodeDataChanged, "/p"));
    t!(c.create("/p/c", b"", &persistent())).unwrap();
    assert_eq!(kind(&t!(watcher.changed())), (EventType::NodeChildrenChanged, "/p"));
    // Not recursive: the child's own changes and grandchildren are not reported.
    t!(c.set_data("/p/c", b"x", None)).unwrap();
    t!(c.create("/p/c/g", b"", &persistent())).unwrap();
    t!(c.delete("/p/c/g", None)).unwrap();
    t!(c.delete("/p/c", None)).unwrap();
    assert_eq!(kind(&t!(watcher.changed())), (EventType::NodeChildrenChanged, "/p"));
    t!(c.delete("/p", None)).unwrap();
    assert_eq!(kind(&t!(watcher.changed())), (EventType::NodeDeleted, "/p"));
    // Still armed after the node is gone.
    t!(c.create("/p", b"", &persistent())).unwrap();
    assert_eq!(kind(&t!(watcher.changed())), (EventType::NodeCreated, "/p"));
    assert_quiet(&mut watcher).await;

    // Dropping the watcher removes it; the session goes on working with a oneshot watch.
    drop(watcher);
    let (_, _, oneshot) = t!(w.get_and_watch_data("/p")).unwrap();
    t!(c.set_data("/p", b"3", None)).unwrap();
    assert_eq!(kind(&t!(oneshot.changed())), (EventType::NodeDataChanged, "/p"));
    assert_eq!(t!(w.get_data("/p")).unwrap().0, b"3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_recursive_watch_sees_all_descendants() {
    let addr = server().await;
    let w = connect(&addr).await;
    let c = connect(&addr).await;
    let mut watcher = t!(w.watch("/r", AddWatchMode::PersistentRecursive)).unwrap();

    t!(c.create("/r", b"", &persistent())).unwrap();
    assert_eq!(kind(&t!(watcher.changed())), (EventType::NodeCreated, "/r"));
    // No NodeChildrenChanged in recursive mode: the child's own NodeCreated instead.
    t!(c.create("/r/a", b"", &persistent())).unwrap();
    assert_eq!(kind(&t!(watcher.changed())), (EventType::NodeCreated, "/r/a"));
    // A sibling that only shares the name prefix is not watched.
    t!(c.create("/rx", b"", &persistent())).unwrap();
    t!(c.create("/rx/y", b"", &persistent())).unwrap();
    t!(c.set_data("/r/a", b"1", None)).unwrap();
    assert_eq!(kind(&t!(watcher.changed())), (EventType::NodeDataChanged, "/r/a"));
    t!(c.create("/r/a/b", b"", &persistent())).unwrap();
    assert_eq!(kind(&t!(watcher.changed())), (EventType::NodeCreated, "/r/a/b"));
    t!(c.create("/r/a/b/c", b"", &open(CreateMode::Ephemeral))).unwrap();
    assert_eq!(kind(&t!(watcher.changed())), (EventType::NodeCreated, "/r/a/b/c"));
    t!(c.set_data("/r", b"2", None)).unwrap();
    assert_eq!(kind(&t!(watcher.changed())), (EventType::NodeDataChanged, "/r"));
    t!(c.delete("/r/a/b/c", None)).unwrap();
    assert_eq!(kind(&t!(watcher.changed())), (EventType::NodeDeleted, "/r/a/b/c"));
    t!(c.delete("/r/a/b", None)).unwrap();
    assert_eq!(kind(&t!(watcher.changed())), (EventType::NodeDeleted, "/r/a/b"));
    t!(c.delete("/r/a", None)).unwrap();
    assert_eq!(kind(&t!(watcher.changed())), (EventType::NodeDeleted, "/r/a"));
    t!(c.delete("/r", None)).unwrap();
    assert_eq!(kind(&t!(watcher.changed())), (EventType::NodeDeleted, "/r"));
    // Changes in a multi are reported one by one, in order.
    let mut m = c.new_multi_writer();
    m.add_create("/r", b"", &persistent()).unwrap();
    m.add_create("/r/m", b"", &persistent()).unwrap();
    m.add_set_data("/r/m", b"v", None).unwrap();
    t!(m.commit()).unwrap();
    assert_eq!(kind(&t!(watcher.changed())), (EventType::NodeCreated, "/r"));
    assert_eq!(kind(&t!(watcher.changed())), (EventType::NodeCreated, "/r/m"));
    assert_eq!(kind(&t!(watcher.changed())), (EventType::NodeDataChanged, "/r/m"));
    assert_quiet(&mut watcher).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_need_read_permission_on_the_node() {
    // 3.9.2+ (CVE-2024-23944): a watcher is told about a change only if it
    // may READ the znode whose ACL the event carries.
    let addr = server().await;
    let owner = connect(&addr).await;
    let stranger = connect(&addr).await;
    t!(owner.auth("digest", b"user:pw")).unwrap();
    let private = [Acl::new(Permission::ALL, AuthId::new("digest", USER_DIGEST_ID))];
    let private = CreateMode::Persistent.with_acls(Acls::new(&private));

    t!(owner.create("/r", b"", &persistent())).unwrap();
    let mut recursive = t!(stranger.watch("/r", AddWatchMode::PersistentRecursive)).unwrap();
    let mut children = t!(stranger.watch("/r", AddWatchMode::Persistent)).unwrap();
    let (_, hidden_watcher) = t!(stranger.check_and_watch_stat("/hidden")).unwrap();

    t!(owner.create("/r/secret", b"", &private)).unwrap();
    // The parent is readable: its child list change is reported.
    assert_eq!(kind(&t!(children.changed())), (EventType::NodeChildrenChanged, "/r"));
    t!(owner.set_data("/r/secret", b"s", None)).unwrap();
    t!(owner.create("/r/open", b"", &persistent())).unwrap();
    // Nothing about /r/secret itself came before /r/open.
    assert_eq!(kind(&t!(recursive.changed())), (EventType::NodeCreated, "/r/open"));
    assert_eq!(kind(&t!(children.changed())), (EventType::NodeChildrenChanged, "/r"));
    t!(owner.delete("/r/secret", None)).unwrap();
    assert_eq!(kind(&t!(children.changed())), (EventType::NodeChildrenChanged, "/r"));
    t!(owner.set_data("/r/open", b"o", None)).unwrap();
    assert_eq!(kind(&t!(recursive.changed())), (EventType::NodeDataChanged, "/r/open"));
    assert_quiet(&mut recursive).await;
    assert_quiet(&mut children).await;

    // A oneshot exists watch fires on creation only if the new node is readable.
    t!(owner.create("/hidden", b"", &private)).unwrap();
    let fired = tokio::time::timeout(ms(300), hidden_watcher.changed()).await;
    assert!(fired.is_err(), "got {fired:?} for a node the watcher may not read");
}

// ---------------------------------------------------------------------------
// Multi
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_writer_applies_all_ops_in_one_txn() {
    let addr = server().await;
    let c = connect(&addr).await;
    t!(c.create("/m", b"0", &persistent())).unwrap();
    t!(c.create("/m/old", b"", &persistent())).unwrap(); // /m: 1 create

    let mut w = c.new_multi_writer();
    w.add_check_version("/m", 0).unwrap();
    w.add_create("/m/new", b"n", &persistent()).unwrap(); // 2 creates
    w.add_set_data("/m", b"1", Some(0)).unwrap();
    w.add_delete("/m/old", None).unwrap(); // still 2 creates: the next suffix is 2
    w.add_create("/m/s-", b"", &open(CreateMode::PersistentSequential)).unwrap();
    let results = t!(w.commit()).unwrap();
    assert_eq!(results.len(), 5, "{results:?}");
    assert_eq!(results[0], MultiWriteResult::Check);
    let MultiWriteResult::Create { path, stat: created } = &results[1] else { panic!("{results:?}") };
    assert_eq!(path, "/m/new");
    let MultiWriteResult::SetData { stat: set } = &results[2] else { panic!("{results:?}") };
    assert_eq!(results[3], MultiWriteResult::Delete);
    let MultiWriteResult::Create { path: seq_path, stat: seq_stat } = &results[4] else { panic!("{results:?}") };
    assert_eq!(seq_path, "/m/s-0000000002");

    // One txn: every op carries the same zxid.
    assert_eq!(set.version, 1);
    assert_eq!(set.data_length, 1);
    assert_fresh(created, 1, 0);
    assert_eq!(created.czxid, set.mzxid);
    assert_eq!(seq_stat.czxid, set.mzxid);

    let (data, stat) = t!(c.get_data("/m")).unwrap();
    assert_eq!(data, b"1");
    assert_eq!(stat.version, 1);
    assert_eq!(stat.num_children, 2);
    // Served cversion: 2 * 3 creates - 2 children.
    assert_eq!(stat.cversion, 4);
    assert_eq!(stat.pzxid, set.mzxid);
    assert_eq!(sorted(t!(c.list_children("/m")).unwrap()), ["new", "s-0000000002"]);
    assert_eq!(t!(c.get_data("/m/new")).unwrap(), (b"n".to_vec(), *created));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_writer_failure_names_the_op_and_applies_nothing() {
    let addr = server().await;
    let c = connect(&addr).await;
    t!(c.create("/m", b"0", &persistent())).unwrap();
    t!(c.create("/m/keep", b"", &persistent())).unwrap();
    let base = t!(c.set_data("/m", b"1", None)).unwrap(); // version 1

    let mut w = c.new_multi_writer();
    w.add_create("/m/x", b"", &persistent()).unwrap();
    w.add_set_data("/m", b"2", Some(0)).unwrap();
    w.add_create("/m/y", b"", &persistent()).unwrap();
    let err = t!(w.commit()).unwrap_err();
    assert_eq!(err, MultiWriteError::OperationFailed { index: 1, source: Error::BadVersion });

    // Later ops see the effect of earlier ones in the same multi.
    let mut w = c.new_multi_writer();
    w.add_create("/m/z", b"", &persistent()).unwrap();
    w.add_create("/m/z", b"", &persistent()).unwrap();
    let err = t!(w.commit()).unwrap_err();
    assert_eq!(err, MultiWriteError::OperationFailed { index: 1, source: Error::NodeExists });

    let mut w = c.new_multi_writer();
    w.add_check_version("/missing", 0).unwrap();
    w.add_create("/m/w", b"", &persistent()).unwrap();
    let err = t!(w.commit()).unwrap_err();
    assert_eq!(err, MultiWriteError::OperationFailed { index: 0, source: Error::NoNode });

    let mut w = c.new_multi_writer();
    w.add_set_data("/m", b"3", Some(1)).unwrap();
    w.add_delete("/m", None).unwrap();
    let err = t!(w.commit()).unwrap_err();
    assert_eq!(err, MultiWriteError::OperationFailed { index: 1, source: Error::NotEmpty });

    // Nothing of the above was applied.
    let (data, stat) = t!(c.get_data("/m")).unwrap();
    assert_eq!(data, b"1");
    assert_eq!(stat.version, 1);
    assert_eq!(stat.mzxid, base.mzxid);
    for path in ["/m/x", "/m/y", "/m/z", "/m/w"] {
        assert_eq!(t!(c.check_stat(path)).unwrap(), None, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_reader_reports_errors_per_op() {
    let addr = server().await;
    let c = connect(&addr).await;
    let (stat, _) = t!(c.create("/mr", b"data", &persistent())).unwrap();
    t!(c.create("/mr/k", b"", &persistent())).unwrap();
    let parent = t!(c.check_stat("/mr")).unwrap().unwrap();
    assert_eq!(parent.czxid, stat.czxid);

    let mut r = c.new_multi_reader();
    r.add_get_data("/mr").unwrap();
    r.add_get_children("/mr").unwrap();
    r.add_get_data("/mr/missing").unwrap();
    r.add_get_children("/missing").unwrap();
    r.add_get_data("/mr/k").unwrap();
    let results = t!(r.commit()).unwrap();
    assert_eq!(results.len(), 5, "{results:?}");
    let MultiReadResult::Data { data, stat } = &results[0] else { panic!("{results:?}") };
    assert_eq!(data, b"data");
    assert_eq!(*stat, parent);
    let MultiReadResult::Children { children } = &results[1] else { panic!("{results:?}") };
    assert_eq!(children, &["k"]);
    let MultiReadResult::Error { err } = &results[2] else { panic!("{results:?}") };
    assert_eq!(*err, Error::NoNode);
    let MultiReadResult::Error { err } = &results[3] else { panic!("{results:?}") };
    assert_eq!(*err, Error::NoNode);
    let MultiReadResult::Data { data, stat } = &results[4] else { panic!("{results:?}") };
    assert!(data.is_empty());
    assert_fresh(stat, 0, 0);
}

// ---------------------------------------------------------------------------
// Recipes
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curator_lock_is_handed_over_between_two_clients() {
    let addr = server().await;
    let c1 = connect(&addr).await;
    let c2 = connect(&addr).await;
    let options = LockOptions::new(Acls::anyone_all()).with_ancestor_options(persistent()).unwrap();

    let lock1 = t!(c1.lock(LockPrefix::new_curator("/locks/job", "lock-").unwrap(), b"one", options.clone())).unwrap();
    let path1 = lock1.lock_path().to_string();
    // {dir}/_c_{uuid}-{name}{sequence}
    let name1 = path1.strip_prefix("/locks/job/_c_").expect(&path1);
    assert_eq!(name1.len(), 36 + "-lock-".len() + 10, "{path1}");
    assert!(name1.ends_with("-lock-0000000000"), "{path1}");
    let (data, stat) = t!(c1.get_data(&path1)).unwrap();
    assert_eq!(data, b"one");
    assert_eq!(stat.ephemeral_owner, c1.session_id().0);

    let contender = c2.lock(LockPrefix::new_curator("/locks/job", "lock-").unwrap(), b"two", options);
    tokio::pin!(contender);
    // The second client queues up behind the first ...
    let start = Instant::now();
    loop {
        tokio::select! {
            r = &mut contender => panic!("second client got the lock while the first holds it: {:?}", r.map(|l| l.lock_path().to_string())),
            _ = tokio::time::sleep(ms(100)) => {}
        }
        if t!(c1.list_children("/locks/job")).unwrap().len() == 2 {
            break;
        }
        assert!(start.elapsed() < STEP, "second contender never created its node");
    }
    // ... and keeps waiting while the first holds the lock.
    tokio::select! {
        r = &mut contender => panic!("second client got the lock while the first holds it: {:?}", r.map(|l| l.lock_path().to_string())),
        _ = tokio::time::sleep(ms(500)) => {}
    }
    // Writes guarded by the held lock go through.
    t!(lock1.create("/locks/guarded", b"by-one", &persistent())).unwrap();

    drop(lock1); // deletes the lock node in the background
    let lock2 = t!(&mut contender).unwrap();
    let path2 = lock2.lock_path().to_string();
    assert!(path2.starts_with("/locks/job/_c_") && path2.ends_with("-lock-0000000001"), "{path2}");
    assert_eq!(t!(c2.check_stat(&path1)).unwrap(), None);
    let (data, stat) = t!(c2.get_data(&path2)).unwrap();
    assert_eq!(data, b"two");
    assert_eq!(stat.ephemeral_owner, c2.session_id().0);
    assert_eq!(t!(c2.list_children("/locks/job")).unwrap().len(), 1);
    let stat = t!(lock2.set_data("/locks/guarded", b"by-two", Some(0))).unwrap();
    assert_eq!(stat.version, 1);
    drop(lock2);
    wait_gone(&c1, &path2, STEP).await;
    assert_eq!(t!(c1.list_children("/locks/job")).unwrap(), Vec::<String>::new());
}
