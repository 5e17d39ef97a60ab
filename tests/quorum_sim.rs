//! Seeded simulation of a 3-server ensemble (turmoil): the real quorum code
//! (openraft, our log store over a simulated disk, the state machine, the
//! peer transport over simulated TCP, the proposer and the core) under
//! crashes, partitions, held links and flaky links, with clients that
//! fail over between servers. For every seed it checks:
//!
//! - at most one leader per term (sampled every 20 ms of simulated time);
//! - equal zxids mean equal trees on every replica (digests sampled), and
//!   at the end every replica holds the same tree;
//! - committed prefixes agree (the simulated disks, entry by entry, up to
//!   what every replica applied);
//! - every acknowledged write is there at the end, on every replica; no
//!   compare-and-set on the shared counter succeeded twice from one version;
//! - a session reads its own writes, through any server;
//! - an ephemeral exists exactly while its session lives: a live session
//!   always finds its ephemeral, and once every session is closed (or
//!   expired) no replica holds a session or an ephemeral.
//!
//! Seeded, not bit-for-bit deterministic: the fault schedule, the workload
//! and turmoil's network are functions of the seed, but openraft draws its
//! election timeouts from the thread RNG. A failing seed usually fails
//! again; the failure message prints it. `QUORUM_SIM_SEEDS=1,2,3` runs
//! other seeds; `QUORUM_SIM_SECS` sets the faulty phase's length.

use ferrokeeper::config::ServerConfig;
use ferrokeeper::pipeline::prep::{self, PrepConfig};
use ferrokeeper::pipeline::{ClientRequest, ConnHandle, ConnectOutcome, Core, CoreMsg, Inspector, Outbound};
use ferrokeeper::quorum::log_store::{LogBackend, MemDisk};
use ferrokeeper::quorum::{network, node, Raft};
use jute::data::Acl;
use jute::proto::*;
use jute::{Jute, Reader};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

const SEEDS: &[u64] = &[1, 2, 3, 5, 8, 13];
const N: u64 = 3;
const CLIENTS: usize = 4;
const PEER_PORT: u16 = 2888;
const SESSION_TIMEOUT_MS: i32 = 4000;

/// What one simulated server leaves behind when it crashes, and its handle
/// while it runs.
struct Slot {
    disk: Arc<Mutex<MemDisk>>,
    dir: PathBuf,
    live: Option<(mpsc::Sender<CoreMsg>, Raft)>,
}

#[derive(Default)]
struct History {
    violations: Vec<String>,
    acked_creates: BTreeSet<String>,
    /// Counter versions written by an acknowledged compare-and-set.
    cas_versions: Vec<i32>,
    acked_ops: u64,
    lost_ops: u64,
    failovers: u64,
    expired: u64,
    /// (node, zxid, digest) samples.
    digests: Vec<(u64, i64, u64)>,
    leaders: BTreeMap<u64, u64>,
    final_report: Option<String>,
}

struct World {
    slots: Mutex<BTreeMap<u64, Slot>>,
    history: Mutex<History>,
    next_conn: AtomicU64,
    workload_over: AtomicBool,
}

impl World {
    fn violation(&self, what: String) {
        self.history.lock().unwrap().violations.push(what);
    }

    fn live_cores(&self) -> Vec<(u64, mpsc::Sender<CoreMsg>)> {
        let slots = self.slots.lock().unwrap();
        slots.iter().filter_map(|(id, s)| s.live.as_ref().map(|(c, _)| (*id, c.clone()))).collect()
    }
}

/// A tiny seeded generator (xorshift), for the workload and the faults.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

struct SimConnector;

impl network::Connector for SimConnector {
    fn connect(&self, addr: String) -> network::Connecting {
        Box::pin(async move {
            let s = turmoil::net::TcpStream::connect(addr.as_str()).await?;
            Ok(Box::new(s) as network::PeerStream)
        })
    }
}

fn node_config(id: u64, dir: &std::path::Path) -> Arc<ServerConfig> {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("myid"), format!("{id}\n")).unwrap();
    let mut text = format!(
        "tickTime=2000\ninitLimit=5\nsyncLimit=2\ndataDir={}\nclientPort=2181\nadmin.enableServer=false\n\
         snapCount=1000\n",
        data.display()
    );
    for i in 1..=N {
        text.push_str(&format!("server.{i}=n{i}:{PEER_PORT}:3888\n"));
    }
    let path = dir.join("zoo.cfg");
    std::fs::write(&path, text).unwrap();
    Arc::new(ServerConfig::load(Some(&path), &[]).expect("valid simulated config"))
}

async fn run_node(world: Arc<World>, id: u64) -> turmoil::Result {
    let (disk, dir) = {
        let slots = world.slots.lock().unwrap();
        (slots[&id].disk.clone(), slots[&id].dir.clone())
    };
    let cfg = node_config(id, &dir);
    let io = node::NodeIo { log: LogBackend::Memory(disk), connector: Arc::new(SimConnector), inline_io: true };
    let n = node::start(cfg, io).await.map_err(|e| e.to_string())?;
    world.slots.lock().unwrap().get_mut(&id).unwrap().live = Some((n.core.clone(), n.raft.clone()));
    let listener = turmoil::net::TcpListener::bind(("0.0.0.0", PEER_PORT)).await?;
    loop {
        let (s, _) = listener.accept().await?;
        let svc = n.service.clone();
        tokio::spawn(async move {
            let _ = network::serve_peer(Box::new(s), svc).await;
        });
    }
}

/// Runs `f` on a node's core and returns its answer (None: the node is down).
async fn inspect<T: Send + 'static>(
    core: &mpsc::Sender<CoreMsg>,
    f: impl FnOnce(&mut Core) -> T + Send + 'static,
) -> Option<T> {
    let (tx, rx) = oneshot::channel();
    let job = Inspector(Box::new(move |c: &mut Core| {
        let _ = tx.send(f(c));
    }));
    core.send(CoreMsg::Inspect(job)).await.ok()?;
    tokio::time::timeout(Duration::from_secs(2), rx).await.ok()?.ok()
}

/// A client connection, talking to a core as a connection task would.
struct Conn {
    core: mpsc::Sender<CoreMsg>,
    conn_id: u64,
    session_id: i64,
    out: mpsc::Receiver<Outbound>,
    kill: CancellationToken,
    xid: i32,
}

#[derive(Debug)]
enum ConnectError {
    /// The server refused the session: expired (or never existed).
    Expired,
    /// Down, not serving, or too slow.
    Unavailable,
}

struct Session {
    id: i64,
    passwd: Vec<u8>,
    last_zxid: i64,
    ephemeral: Option<String>,
    last_create: Option<String>,
}

async fn connect(world: &World, core: mpsc::Sender<CoreMsg>, session: Option<&Session>) -> Result<Conn, ConnectError> {
    let (out_tx, mut out) = mpsc::channel(4096);
    let kill = CancellationToken::new();
    let conn_id = world.next_conn.fetch_add(1, Ordering::Relaxed);
    let handle = ConnHandle { id: conn_id, addr: "10.9.9.9:4000".parse().unwrap(), out: out_tx, kill: kill.clone() };
    let request = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: session.map_or(0, |s| s.last_zxid),
        time_out: SESSION_TIMEOUT_MS,
        session_id: session.map_or(0, |s| s.id),
        passwd: session.map_or(vec![0; 16], |s| s.passwd.clone()),
    };
    let (done_tx, done_rx) = oneshot::channel();
    let msg =
        CoreMsg::Connect { conn: handle, request, read_only_byte: false, read_only_allowed: false, done: done_tx };
    core.send(msg).await.map_err(|_| ConnectError::Unavailable)?;
    let outcome = tokio::time::timeout(Duration::from_secs(5), done_rx).await;
    let first = tokio::time::timeout(Duration::from_millis(500), out.recv()).await.ok().flatten();
    let response = match first {
        Some(Outbound::Frame(f)) => ConnectResponse::from_bytes(&f[4..]).ok(),
        _ => None,
    };
    match (outcome, response) {
        (Ok(Ok(ConnectOutcome::Accepted { session_id })), Some(r)) if r.session_id == session_id => {
            Ok(Conn { core, conn_id, session_id, out, kill, xid: 0 })
        }
        (_, Some(r)) if r.session_id == 0 && session.is_some() => Err(ConnectError::Expired),
        _ => {
            let _ = core.send(CoreMsg::Disconnected { conn_id }).await;
            Err(ConnectError::Unavailable)
        }
    }
}

impl Conn {
    /// One request; Err when the connection is lost (outcome unknown).
    async fn call(&mut self, opcode: i32, body: Vec<u8>) -> Result<(ReplyHeader, Vec<u8>), ()> {
        self.xid += 1;
        let xid = self.xid;
        let prepped = prep::prep(opcode, &body, PrepConfig { reconfig_enabled: false, replicated: true });
        let r = ClientRequest {
            conn_id: self.conn_id,
            session_id: self.session_id,
            xid,
            opcode,
            time_ms: ferrokeeper::pipeline::wall_clock_ms(),
            auth: Arc::new(vec![]),
            prepped,
            permit: None,
            received: tokio::time::Instant::now(),
        };
        self.core.send(CoreMsg::Request(r)).await.map_err(|_| ())?;
        let deadline = tokio::time::sleep(Duration::from_secs(6));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                f = self.out.recv() => match f {
                    Some(Outbound::Frame(f)) => {
                        let mut rd = Reader::new(&f[4..]);
                        let h = ReplyHeader::read_from(&mut rd).map_err(|_| ())?;
                        if h.xid == xid {
                            return Ok((h, rd.rest().to_vec()));
                        }
                    }
                    _ => return Err(()),
                },
                _ = self.kill.cancelled() => return Err(()),
                _ = &mut deadline => return Err(()),
            }
        }
    }

    async fn close(self) {
        let _ = self.core.send(CoreMsg::Disconnected { conn_id: self.conn_id }).await;
    }
}

fn path_of(b: &[u8]) -> Option<String> {
    CreateResponse::from_bytes(b).ok().map(|r| r.path)
}

/// One client: a session at a time, failing over between servers.
async fn client(world: Arc<World>, me: usize, seed: u64) {
    let mut rng = Rng(seed ^ (0x9e37_79b9 * (me as u64 + 1)) | 1);
    let mut session: Option<Session> = None;
    let mut seq = 0u64;
    while !world.workload_over.load(Ordering::Acquire) {
        let cores = world.live_cores();
        if cores.is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        let (_, core) = cores[rng.below(cores.len() as u64) as usize].clone();
        let mut conn = match connect(&world, core, session.as_ref()).await {
            Ok(c) => c,
            Err(ConnectError::Expired) => {
                world.history.lock().unwrap().expired += 1;
                session = None;
                continue;
            }
            Err(ConnectError::Unavailable) => {
                tokio::time::sleep(Duration::from_millis(20 + rng.below(80))).await;
                continue;
            }
        };
        if session.as_ref().is_some_and(|s| s.id == conn.session_id) {
            world.history.lock().unwrap().failovers += 1;
        }
        let s = session.get_or_insert_with(|| Session {
            id: conn.session_id,
            passwd: ferrokeeper::session::tracker::session_password(conn.session_id),
            last_zxid: 0,
            ephemeral: None,
            last_create: None,
        });
        // Operations until the connection is lost or the session ends.
        loop {
            if world.workload_over.load(Ordering::Acquire) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2 + rng.below(15))).await;
            let dice = rng.below(100);
            let (op, body, what) = if s.ephemeral.is_none() {
                let path = format!("/e-{:x}", s.id);
                let req = CreateRequest { path, data: Some(vec![1]), acl: Acl::open_unsafe(), flags: 1 };
                (op::CREATE, req.to_bytes(), "ephemeral")
            } else if dice < 40 {
                seq += 1;
                let path = format!("/c{me}-{seq}");
                let req =
                    CreateRequest { path, data: Some(seq.to_be_bytes().to_vec()), acl: Acl::open_unsafe(), flags: 0 };
                (op::CREATE, req.to_bytes(), "create")
            } else if dice < 70 {
                (op::GET_DATA, GetDataRequest { path: "/counter".into(), watch: false }.to_bytes(), "counter-read")
            } else if dice < 85 {
                let path = s.last_create.clone().unwrap_or_else(|| "/counter".into());
                (op::EXISTS, ExistsRequest { path, watch: false }.to_bytes(), "read-own")
            } else if dice < 95 {
                let path = s.ephemeral.clone().unwrap_or_default();
                (op::EXISTS, ExistsRequest { path, watch: false }.to_bytes(), "own-ephemeral")
            } else if dice < 98 {
                (op::CLOSE_SESSION, vec![], "close")
            } else {
                (op::SYNC, "/".to_string().to_bytes(), "sync")
            };
            let result = conn.call(op, body.clone()).await;
            let Ok((h, reply)) = result else {
                world.history.lock().unwrap().lost_ops += 1;
                break;
            };
            if h.zxid > s.last_zxid {
                s.last_zxid = h.zxid;
            }
            if h.err == err::SESSION_EXPIRED {
                world.history.lock().unwrap().expired += 1;
                session = None;
                break;
            }
            world.history.lock().unwrap().acked_ops += 1;
            match what {
                "ephemeral" if h.err == 0 || h.err == err::NODE_EXISTS => {
                    s.ephemeral = Some(format!("/e-{:x}", s.id));
                }
                "create" if h.err == 0 => {
                    let p = path_of(&reply).unwrap_or_default();
                    world.history.lock().unwrap().acked_creates.insert(p.clone());
                    s.last_create = Some(p);
                }
                "counter-read" if h.err == 0 => {
                    // Compare-and-set from the version just read.
                    let Ok(g) = GetDataResponse::from_bytes(&reply) else { continue };
                    let set =
                        SetDataRequest { path: "/counter".into(), data: Some(vec![me as u8]), version: g.stat.version };
                    match conn.call(op::SET_DATA, set.to_bytes()).await {
                        Ok((h2, r2)) if h2.err == 0 => {
                            if let Ok(sd) = SetDataResponse::from_bytes(&r2) {
                                world.history.lock().unwrap().cas_versions.push(sd.stat.version);
                            }
                        }
                        Ok((h2, _)) if h2.err == err::SESSION_EXPIRED => {
                            session = None;
                            break;
                        }
                        Ok(_) => {}
                        Err(()) => {
                            world.history.lock().unwrap().lost_ops += 1;
                            break;
                        }
                    }
                }
                "counter-read" if h.err == err::NO_NODE => {
                    let req = CreateRequest { path: "/counter".into(), data: None, acl: Acl::open_unsafe(), flags: 0 };
                    let _ = conn.call(op::CREATE, req.to_bytes()).await;
                }
                "read-own" if s.last_create.is_some() && h.err != 0 => {
                    world.violation(format!(
                        "session 0x{:x} did not read its own acknowledged create {:?}: error {}",
                        s.id, s.last_create, h.err
                    ));
                }
                "own-ephemeral" if h.err != 0 => {
                    world.violation(format!(
                        "live session 0x{:x} does not find its ephemeral {:?}: error {}",
                        s.id, s.ephemeral, h.err
                    ));
                }
                "close" if h.err == 0 => {
                    session = None;
                    break;
                }
                _ => {}
            }
        }
        conn.close().await;
    }
    // The end: close the session, if any, through whichever server serves.
    for _ in 0..50 {
        let Some(s) = session.as_ref() else { return };
        let cores = world.live_cores();
        if let Some((_, core)) = cores.get(rng.below(cores.len().max(1) as u64) as usize).cloned() {
            match connect(&world, core, Some(s)).await {
                Ok(mut c) => {
                    if let Ok((h, _)) = c.call(op::CLOSE_SESSION, vec![]).await {
                        if h.err == 0 || h.err == err::SESSION_EXPIRED {
                            c.close().await;
                            return;
                        }
                    }
                    c.close().await;
                }
                Err(ConnectError::Expired) => return,
                Err(ConnectError::Unavailable) => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    world.violation(format!("client {me} could not close its session at the end"));
}

/// The checks that need every replica, after the faults and the workload.
async fn final_checks(world: Arc<World>) {
    // Quiet: let every server catch up, and abandoned sessions expire.
    tokio::time::sleep(Duration::from_millis(9000)).await;
    let cores = world.live_cores();
    let mut states = Vec::new();
    for (id, core) in &cores {
        let creates = world.history.lock().unwrap().acked_creates.clone();
        let st = inspect(core, move |c| {
            let missing: Vec<String> = creates.iter().filter(|p| c.tree.get(p).is_none()).cloned().collect();
            let ephemerals: usize = c.tree.sessions_with_ephemerals().map(|(_, e)| e.len()).sum();
            let counter = c.tree.get("/counter").map(|n| n.stat.version);
            (c.tree.last_zxid(), c.tree.digest(), missing, ephemerals, c.sessions.len(), counter)
        })
        .await;
        match st {
            Some(s) => states.push((*id, s)),
            None => world.violation(format!("server {id} did not answer at the end")),
        }
    }
    let mut report = String::new();
    if states.len() as u64 != N {
        world.violation(format!("only {} of {N} servers are up at the end", states.len()));
    }
    let first = states.first().map(|(_, s)| (s.0, s.1));
    for (id, (zxid, digest, missing, ephemerals, sessions, _)) in &states {
        if Some((*zxid, *digest)) != first {
            world.violation(format!("server {id} ends at zxid 0x{zxid:x} digest {digest:x}, server 1's {first:x?}"));
        }
        if !missing.is_empty() {
            world.violation(format!(
                "server {id} lost {} acknowledged creates, e.g. {:?}",
                missing.len(),
                &missing[..1]
            ));
        }
        if *ephemerals != 0 || *sessions != 0 {
            world.violation(format!(
                "server {id} still holds {sessions} sessions and {ephemerals} ephemerals after every session ended"
            ));
        }
    }
    {
        let h = world.history.lock().unwrap();
        let mut v = h.cas_versions.clone();
        v.sort_unstable();
        let n = v.len();
        v.dedup();
        if v.len() != n {
            drop(h);
            world.violation("two compare-and-sets succeeded from the same version".into());
        } else if let Some(max) = v.last() {
            let counter = states.first().and_then(|(_, s)| s.5);
            if counter.is_none_or(|c| c < *max) {
                drop(h);
                world.violation(format!("counter version {counter:?} is below an acknowledged {max}"));
            }
        }
    }
    // Committed prefixes: entry by entry, up to what every replica applied.
    let applied: Vec<u64> = {
        let slots = world.slots.lock().unwrap();
        slots
            .values()
            .filter_map(|s| s.live.as_ref())
            .map(|(_, r)| r.metrics().borrow().last_applied.map_or(0, |l| l.index))
            .collect()
    };
    let upto = applied.iter().copied().min().unwrap_or(0);
    {
        let slots = world.slots.lock().unwrap();
        let disks: Vec<_> = slots
            .values()
            .map(|s| {
                s.disk.lock().unwrap().entries.range(..=upto).map(|(i, e)| (*i, e.log_id)).collect::<HashMap<_, _>>()
            })
            .collect();
        for i in 0..=upto {
            let ids: BTreeSet<_> = disks.iter().filter_map(|d| d.get(&i)).collect();
            if ids.len() > 1 {
                drop(slots);
                world.violation(format!("replicas disagree on committed entry {i}: {ids:?}"));
                break;
            }
        }
    }
    let zxid = first.map_or(0, |f| f.0);
    report.push_str(&format!(
        "final zxid 0x{zxid:x}, {} servers agree; committed prefix checked to {upto}",
        states.len()
    ));
    world.history.lock().unwrap().final_report = Some(report);
}

/// What ends the fault in progress.
type Heal = Box<dyn FnMut(&mut turmoil::Sim)>;

fn run_seed(seed: u64, faulty_secs: u64) -> Result<String, String> {
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let world = Arc::new(World {
        slots: Mutex::new(
            (1..=N)
                .map(|i| {
                    let dir = tmp.path().join(format!("n{i}"));
                    (i, Slot { disk: Arc::new(Mutex::new(MemDisk::default())), dir, live: None })
                })
                .collect(),
        ),
        history: Mutex::new(History::default()),
        next_conn: AtomicU64::new(1),
        workload_over: AtomicBool::new(false),
    });
    let total = Duration::from_secs(faulty_secs + 60);
    let mut sim = turmoil::Builder::new()
        .rng_seed(seed)
        .simulation_duration(total)
        .min_message_latency(Duration::from_millis(1))
        .max_message_latency(Duration::from_millis(4))
        .tcp_capacity(1 << 16)
        .build();
    for i in 1..=N {
        let w = world.clone();
        sim.host(format!("n{i}"), move || run_node(w.clone(), i));
    }
    let w = world.clone();
    sim.client("clients", async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut tasks = Vec::new();
        for me in 0..CLIENTS {
            tasks.push(tokio::spawn(client(w.clone(), me, seed)));
        }
        tokio::time::sleep(Duration::from_secs(faulty_secs + 8)).await;
        w.workload_over.store(true, Ordering::Release);
        for t in tasks {
            let _ = t.await;
        }
        final_checks(w).await;
        Ok(())
    });

    // The fault schedule: one fault at a time, each healed before the next.
    let mut rng = Rng(seed.wrapping_mul(0x2545_f491_4f6c_dd1d) | 1);
    let mut next_fault = Duration::from_secs(2);
    let mut heal_at: Option<(Duration, Heal)> = None;
    let mut next_sample = Duration::ZERO;
    let mut faults = Vec::new();
    loop {
        let finished = sim.step().map_err(|e| format!("seed {seed}: simulation failed: {e}"))?;
        let now = sim.elapsed();
        if let Some((at, _)) = &heal_at {
            if now >= *at {
                let (_, mut heal) = heal_at.take().expect("checked");
                heal(&mut sim);
                next_fault = now + Duration::from_millis(1500 + rng.below(2500));
            }
        }
        if heal_at.is_none() && now >= next_fault && now < Duration::from_secs(faulty_secs) {
            // Half the faults hit the leader: failover is where bugs hide.
            let leader = {
                let slots = world.slots.lock().unwrap();
                slots.iter().find_map(|(id, s)| {
                    let (_, raft) = s.live.as_ref()?;
                    (raft.metrics().borrow().state == openraft::ServerState::Leader).then_some(*id)
                })
            };
            let victim = match leader {
                Some(l) if rng.below(2) == 0 => l,
                _ => 1 + rng.below(N),
            };
            let host = format!("n{victim}");
            let others: Vec<String> = (1..=N).filter(|i| *i != victim).map(|i| format!("n{i}")).collect();
            let length = Duration::from_millis(800 + rng.below(3500));
            match rng.below(4) {
                0 => {
                    faults.push(format!("{:?} crash {host}", now));
                    sim.crash(host.as_str());
                    world.slots.lock().unwrap().get_mut(&victim).unwrap().live = None;
                    heal_at = Some((now + length, Box::new(move |s: &mut turmoil::Sim| s.bounce(host.as_str()))));
                }
                1 => {
                    faults.push(format!("{:?} partition {host}", now));
                    for o in &others {
                        sim.partition(host.as_str(), o.as_str());
                    }
                    heal_at = Some((
                        now + length,
                        Box::new(move |s: &mut turmoil::Sim| {
                            for o in &others {
                                s.repair(host.as_str(), o.as_str());
                            }
                        }),
                    ));
                }
                2 => {
                    faults.push(format!("{:?} hold {host}", now));
                    for o in &others {
                        sim.hold(host.as_str(), o.as_str());
                    }
                    heal_at = Some((
                        now + length.min(Duration::from_millis(1500)),
                        Box::new(move |s: &mut turmoil::Sim| {
                            for o in &others {
                                s.release(host.as_str(), o.as_str());
                            }
                        }),
                    ));
                }
                _ => {
                    faults.push(format!("{:?} flaky links", now));
                    sim.set_fail_rate(0.002);
                    heal_at = Some((now + length, Box::new(|s: &mut turmoil::Sim| s.set_fail_rate(0.0))));
                }
            }
        }
        if now >= next_sample {
            next_sample = now + Duration::from_millis(20);
            let slots = world.slots.lock().unwrap();
            let mut h = world.history.lock().unwrap();
            for (id, s) in slots.iter() {
                let Some((core, raft)) = &s.live else { continue };
                let m = raft.metrics().borrow().clone();
                if m.state == openraft::ServerState::Leader {
                    if let Some(prev) = h.leaders.insert(m.current_term, *id) {
                        if prev != *id {
                            h.violations.push(format!("term {}: two leaders, {prev} and {id}", m.current_term));
                        }
                    }
                }
                let (w, id) = (world.clone(), *id);
                let job = Inspector(Box::new(move |c: &mut Core| {
                    let (z, d) = (c.tree.last_zxid(), c.tree.digest());
                    w.history.lock().unwrap().digests.push((id, z, d));
                }));
                let _ = core.try_send(CoreMsg::Inspect(job));
            }
        }
        if finished {
            break;
        }
    }
    let h = world.history.lock().unwrap();
    let mut violations = h.violations.clone();
    let mut at_zxid: HashMap<i64, (u64, u64)> = HashMap::new();
    for (id, z, d) in &h.digests {
        match at_zxid.get(z) {
            Some((other, d2)) if d2 != d => {
                violations.push(format!("zxid 0x{z:x}: server {id} digest {d:x}, server {other} {d2:x}"));
            }
            _ => {
                at_zxid.insert(*z, (*id, *d));
            }
        }
    }
    if h.final_report.is_none() {
        violations.push("the final checks did not run".into());
    }
    let summary = format!(
        "seed {seed}: {} faults, {} acknowledged ops ({} creates, {} compare-and-sets), {} lost to faults, \
         {} failovers on a live session, {} sessions expired, {} terms, {} digest samples; {}",
        faults.len(),
        h.acked_ops,
        h.acked_creates.len(),
        h.cas_versions.len(),
        h.lost_ops,
        h.failovers,
        h.expired,
        h.leaders.len(),
        h.digests.len(),
        h.final_report.clone().unwrap_or_default()
    );
    if violations.is_empty() {
        Ok(summary)
    } else {
        Err(format!("{summary}\nfaults: {faults:?}\nVIOLATIONS:\n  {}", violations.join("\n  ")))
    }
}

#[test]
fn seeded_faults_keep_the_quorum_safe() {
    let seeds: Vec<u64> = match std::env::var("QUORUM_SIM_SEEDS") {
        Ok(s) => s.split(',').filter_map(|x| x.trim().parse().ok()).collect(),
        Err(_) => SEEDS.to_vec(),
    };
    let secs = std::env::var("QUORUM_SIM_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(15);
    let mut failures = Vec::new();
    for seed in seeds {
        let started = std::time::Instant::now();
        match run_seed(seed, secs) {
            Ok(summary) => println!("{summary} [{:.1}s]", started.elapsed().as_secs_f64()),
            Err(e) => {
                println!("FAILED {e}");
                failures.push(e);
            }
        }
    }
    assert!(failures.is_empty(), "{} seed(s) failed:\n{}", failures.len(), failures.join("\n\n"));
}
