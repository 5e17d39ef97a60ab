//! Peer transport: length-prefixed postcard frames over TCP, openraft's
//! `RaftNetwork` on top, plus our own requests (forwarded writes, the
//! leader's read index for `sync`, followers' session activity).
//!
//! - Inputs: requests from openraft's replication tasks and the proposer
//!   (outgoing), frames from peers (incoming).
//! - Outputs: responses; incoming Raft RPCs handed to openraft, forwarded
//!   writes proposed on the leader in arrival order.
//! - Invariants:
//!   - one outgoing connection per peer ([`Link`]), dialled at the address
//!     this server's configuration gives for that id (the membership's
//!     address only for ids it does not list), redialled with back-off;
//!     every request waits at most its deadline and a link whose peer stops
//!     answering is dropped ([`STALL`]);
//!   - requests on one link are written in the order sent, and a peer reads
//!     forwarded writes of one connection in order and proposes them in that
//!     order, so a follower's writes keep their order at the leader;
//!   - every time a request is dropped unsent or a connection breaks, the
//!     link's epoch advances, and requests tagged with an older epoch are
//!     dropped instead of sent: a request never goes out on a connection
//!     newer than one that lost an earlier request ([`Link::send`]);
//!   - frames are bounded (an append of [`MAX_ENTRIES_PER_APPEND`] entries of
//!     `jute.maxbuffer` each, or a snapshot chunk); a bad frame closes that
//!     peer connection only.

use super::{Batch, PeerNode, Raft, TypeConfig};
use crate::pipeline::CoreMsg;
use futures_util::{SinkExt, StreamExt};
use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Timeout, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::RPCTypes;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::codec::{Framed, LengthDelimitedCodec};

/// Entries in one AppendEntries, at most (openraft's `max_payload_entries`);
/// each is a batch of up to [`super::BATCH_BYTES`] plus one transaction.
pub const MAX_ENTRIES_PER_APPEND: u64 = 64;
/// Requests queued on one link, at most.
const LINK_QUEUE: usize = 8192;
/// A connection that has had requests unanswered for this long, and no
/// answer at all meanwhile, is considered dead (a paused or wedged peer, a
/// link that silently drops), and redialled. Requests whose caller gave up
/// still count: openraft's deadlines are shorter than this.
pub const STALL: Duration = Duration::from_secs(3);
/// Unanswered requests kept per connection, at most (then it is redialled).
const MAX_PENDING: usize = 100_000;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_millis(500);

/// The largest peer frame for a given `jute.maxbuffer`.
pub fn max_frame(jute_max_buffer: usize) -> usize {
    MAX_ENTRIES_PER_APPEND as usize * (super::BATCH_BYTES + jute_max_buffer + (64 << 10)) + (8 << 20)
}

#[derive(Serialize, Deserialize)]
enum Frame {
    Hello { from: u64 },
    Req { id: u64, body: PeerReq },
    Resp { id: u64, body: PeerResp },
}

/// A request to a peer.
#[derive(Serialize, Deserialize)]
pub enum PeerReq {
    Append(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<u64>),
    Snapshot(InstallSnapshotRequest<TypeConfig>),
    /// Client writes for the leader to propose (one Raft entry).
    Forward(Batch),
    /// The leader's commit point, once it has confirmed it is still leader.
    ReadIndex,
    /// Sessions with activity on the sender (id, timeout); no answer.
    Touch(Vec<(i64, i32)>),
    /// Whether the peer belongs to an ensemble already (a pristine server
    /// asks before it helps found a new one).
    Status,
    /// A reconfiguration for the leader to run.
    Reconfig(super::reconfig::ReconfigSpec),
    /// From the leader: the configuration of this zxid no longer lists the
    /// receiver (which would otherwise never hear of it); no answer.
    Removed {
        at: i64,
    },
}

#[derive(Serialize, Deserialize)]
pub enum PeerResp {
    Append(Result<AppendEntriesResponse<u64>, RaftError<u64>>),
    Vote(Result<VoteResponse<u64>, RaftError<u64>>),
    Snapshot(Result<InstallSnapshotResponse<u64>, RaftError<u64, InstallSnapshotError>>),
    /// The forwarded write was committed (Ok) or will not be (Err).
    Forward(Result<(), String>),
    ReadIndex(Result<u64, String>),
    Status {
        initialized: bool,
    },
    /// The new configuration's zxid, or a ZooKeeper error code.
    Reconfig(Result<i64, i32>),
}

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("no address known for server {0}")]
    NoAddress(u64),
    #[error("the link to server {0} is overloaded")]
    Full(u64),
    #[error("the link to server {0} is closed")]
    Closed(u64),
    #[error("server {0} did not answer within {1:?}")]
    Timeout(u64, Duration),
    #[error("the request to server {0} was lost (connection failed or broke)")]
    Lost(u64),
}

/// A byte stream between two servers (TCP here; simulated in the quorum
/// simulation test).
pub trait PeerIo: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> PeerIo for T {}

pub type PeerStream = Box<dyn PeerIo>;
pub type Connecting = Pin<Box<dyn Future<Output = std::io::Result<PeerStream>> + Send>>;

/// How a link dials a peer's `host:port`.
pub trait Connector: Send + Sync + 'static {
    fn connect(&self, addr: String) -> Connecting;
}

/// Plain TCP, with Nagle off (frames are small and latency matters).
pub struct TcpConnector;

impl Connector for TcpConnector {
    fn connect(&self, addr: String) -> Connecting {
        Box::pin(async move {
            let s = TcpStream::connect(&addr).await?;
            let _ = s.set_nodelay(true);
            Ok(Box::new(s) as PeerStream)
        })
    }
}

/// Every server this one talks to.
pub struct Peers {
    my_id: u64,
    max_frame: usize,
    connector: Arc<dyn Connector>,
    /// `host:quorumPort` by id: this configuration's view first.
    addrs: Mutex<BTreeMap<u64, String>>,
    links: Mutex<HashMap<u64, Arc<Link>>>,
}

impl Peers {
    pub fn new(
        my_id: u64,
        configured: BTreeMap<u64, String>,
        max_frame: usize,
        connector: Arc<dyn Connector>,
    ) -> Arc<Peers> {
        Arc::new(Peers {
            my_id,
            max_frame,
            connector,
            addrs: Mutex::new(configured),
            links: Mutex::new(HashMap::new()),
        })
    }

    pub fn my_id(&self) -> u64 {
        self.my_id
    }

    /// Records the membership's address of a server this configuration does
    /// not list (a configured address always wins).
    pub fn learn(&self, id: u64, node: &PeerNode) {
        let mut parts = node.addr.rsplitn(3, ':');
        let (_election, quorum, host) = (parts.next(), parts.next(), parts.next());
        if let (Some(q), Some(h)) = (quorum, host) {
            self.addrs.lock().unwrap_or_else(|e| e.into_inner()).entry(id).or_insert_with(|| format!("{h}:{q}"));
        }
    }

    fn addr_of(&self, id: u64) -> Option<String> {
        self.addrs.lock().unwrap_or_else(|e| e.into_inner()).get(&id).cloned()
    }

    /// The link to server `id`, started on first use.
    pub fn link(self: &Arc<Self>, id: u64) -> Arc<Link> {
        let mut links = self.links.lock().unwrap_or_else(|e| e.into_inner());
        links
            .entry(id)
            .or_insert_with(|| {
                let (tx, rx) = mpsc::channel(LINK_QUEUE);
                let epoch = Arc::new(AtomicU64::new(0));
                tokio::spawn(link_task(self.clone(), id, rx, epoch.clone()));
                Arc::new(Link { target: id, tx, epoch })
            })
            .clone()
    }
}

struct Outgoing {
    epoch: u64,
    body: PeerReq,
    reply: Option<oneshot::Sender<PeerResp>>,
}

/// The outgoing connection to one peer.
pub struct Link {
    target: u64,
    tx: mpsc::Sender<Outgoing>,
    epoch: Arc<AtomicU64>,
}

/// A request on its way: the link epoch it was sent in, and its answer.
pub struct Sent {
    pub epoch: u64,
    pub reply: oneshot::Receiver<PeerResp>,
}

impl Link {
    pub fn target(&self) -> u64 {
        self.target
    }

    /// The link's current epoch (see [`Link::send`]).
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Queues a request, in order with every other request on this link.
    /// Two requests with the same epoch are written on the same connection,
    /// in order, or the later one is dropped. With `in_epoch`, the request
    /// is dropped unless that epoch is still the link's (the caller's
    /// earlier requests went in it); otherwise it takes the current one.
    pub fn send(&self, body: PeerReq, in_epoch: Option<u64>) -> Result<Sent, LinkError> {
        let (tx, rx) = oneshot::channel();
        let epoch = in_epoch.unwrap_or_else(|| self.epoch.load(Ordering::Acquire));
        self.tx.try_send(Outgoing { epoch, body, reply: Some(tx) }).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => LinkError::Full(self.target),
            mpsc::error::TrySendError::Closed(_) => LinkError::Closed(self.target),
        })?;
        Ok(Sent { epoch, reply: rx })
    }

    /// Queues a request whose answer nobody waits for.
    pub fn notify(&self, body: PeerReq) {
        let epoch = self.epoch.load(Ordering::Acquire);
        let _ = self.tx.try_send(Outgoing { epoch, body, reply: None });
    }

    /// Sends a request and waits for its answer, at most `deadline`.
    pub async fn call(&self, body: PeerReq, deadline: Duration) -> Result<PeerResp, LinkError> {
        let sent = self.send(body, None)?;
        match tokio::time::timeout(deadline, sent.reply).await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(_)) => Err(LinkError::Lost(self.target)),
            Err(_) => Err(LinkError::Timeout(self.target, deadline)),
        }
    }
}

fn codec(max_frame: usize) -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder().length_field_length(4).max_frame_length(max_frame).new_codec()
}

fn encode(frame: &Frame) -> bytes::Bytes {
    bytes::Bytes::from(postcard::to_stdvec(frame).expect("peer frames serialize"))
}

/// Advances the epoch and drops every request queued so far (all of an
/// older epoch): what follows a lost request never overtakes it.
fn advance_epoch(epoch: &AtomicU64, rx: &mut mpsc::Receiver<Outgoing>) {
    epoch.fetch_add(1, Ordering::AcqRel);
    while rx.try_recv().is_ok() {}
}

async fn link_task(peers: Arc<Peers>, target: u64, mut rx: mpsc::Receiver<Outgoing>, epoch: Arc<AtomicU64>) {
    let mut backoff = Duration::from_millis(20);
    let mut next_attempt = Instant::now();
    // Logged on change only: a peer that is down is retried many times.
    let mut reachable: Option<bool> = None;
    let mut report = |now_up: bool, why: &dyn std::fmt::Display| {
        if reachable != Some(now_up) {
            if now_up {
                tracing::info!(peer = target, "connected to peer");
            } else if reachable.is_some() {
                tracing::warn!(peer = target, reason = %why, "peer unreachable");
            }
            reachable = Some(now_up);
        }
    };
    while let Some(first) = rx.recv().await {
        if first.epoch < epoch.load(Ordering::Acquire) {
            continue;
        }
        let addr = match peers.addr_of(target) {
            Some(a) if Instant::now() >= next_attempt => a,
            _ => {
                advance_epoch(&epoch, &mut rx);
                continue;
            }
        };
        let stream = match tokio::time::timeout(CONNECT_TIMEOUT, peers.connector.connect(addr.clone())).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                tracing::debug!(peer = target, %addr, error = %e, "cannot reach peer");
                report(false, &e);
                next_attempt = Instant::now() + backoff;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                advance_epoch(&epoch, &mut rx);
                continue;
            }
            Err(_) => {
                tracing::debug!(peer = target, %addr, "connecting to peer timed out");
                report(false, &"connect timed out");
                next_attempt = Instant::now() + backoff;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                advance_epoch(&epoch, &mut rx);
                continue;
            }
        };
        backoff = Duration::from_millis(20);
        report(true, &"");
        let my_epoch = epoch.load(Ordering::Acquire);
        let result = run_link(&peers, stream, first, &mut rx, my_epoch).await;
        if let Err(e) = result {
            tracing::debug!(peer = target, error = %e, "peer link closed");
            report(false, &e);
        }
        advance_epoch(&epoch, &mut rx);
        if rx.is_closed() {
            return;
        }
    }
}

async fn run_link(
    peers: &Peers,
    stream: PeerStream,
    first: Outgoing,
    rx: &mut mpsc::Receiver<Outgoing>,
    my_epoch: u64,
) -> std::io::Result<()> {
    let (mut sink, mut frames) = Framed::new(stream, codec(peers.max_frame)).split();
    sink.send(encode(&Frame::Hello { from: peers.my_id })).await?;
    let mut pending: HashMap<u64, (Instant, oneshot::Sender<PeerResp>)> = HashMap::new();
    let mut next_id: u64 = 1;
    let mut queued = Some(first);
    let mut check = tokio::time::interval(Duration::from_millis(500));
    let mut last_answer = Instant::now();
    loop {
        // Write what is ready (in order), then flush once.
        let mut wrote = false;
        while let Some(o) = queued.take() {
            if o.epoch >= my_epoch {
                let id = next_id;
                next_id += 1;
                if let Some(reply) = o.reply {
                    pending.insert(id, (Instant::now(), reply));
                }
                sink.feed(encode(&Frame::Req { id, body: o.body })).await?;
                wrote = true;
            }
            queued = rx.try_recv().ok();
        }
        if wrote {
            sink.flush().await?;
        }
        tokio::select! {
            o = rx.recv() => match o {
                Some(o) => queued = Some(o),
                None => return Ok(()),
            },
            f = frames.next() => match f {
                Some(Ok(bytes)) => match postcard::from_bytes::<Frame>(&bytes) {
                    Ok(Frame::Resp { id, body }) => {
                        last_answer = Instant::now();
                        if let Some((_, reply)) = pending.remove(&id) {
                            let _ = reply.send(body);
                        }
                    }
                    Ok(_) => return Err(std::io::Error::other("unexpected frame on an outgoing peer link")),
                    Err(e) => return Err(std::io::Error::other(format!("undecodable peer frame: {e}"))),
                },
                Some(Err(e)) => return Err(e),
                None => return Err(std::io::Error::other("peer closed the connection")),
            },
            _ = check.tick() => {
                let stalled = pending.values().any(|(at, _)| at.elapsed() > STALL) && last_answer.elapsed() > STALL;
                if stalled || pending.len() > MAX_PENDING {
                    return Err(std::io::Error::other("peer stopped answering"));
                }
            }
        }
    }
}

/// What serving peers' requests needs.
pub struct PeerService {
    pub raft: Raft,
    pub core: mpsc::Sender<CoreMsg>,
    pub peers: Arc<Peers>,
    /// The zxid of a configuration that removed this server (0: none).
    pub removed_at: Arc<AtomicU64>,
    pub max_frame: usize,
    /// Told of the leader's appends and of its connection's end.
    pub leader_loss: Arc<super::roles::LeaderLoss>,
}

/// Accepts peers' connections and serves their requests.
pub async fn serve_peers(listener: TcpListener, svc: Arc<PeerService>) {
    loop {
        let (stream, addr) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "accepting a peer connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let svc = svc.clone();
        tokio::spawn(async move {
            if let Err(e) = serve_peer(Box::new(stream), svc).await {
                tracing::debug!(peer = %addr, error = %e, "peer connection closed");
            }
        });
    }
}

/// Serves one peer's connection until it closes (or sends garbage).
pub async fn serve_peer(stream: PeerStream, svc: Arc<PeerService>) -> std::io::Result<()> {
    let (raft, core) = (&svc.raft, &svc.core);
    let (mut sink, mut frames) = Framed::new(stream, codec(svc.max_frame)).split();
    let (out_tx, mut out_rx) = mpsc::channel::<Frame>(4096);
    let writer = tokio::spawn(async move {
        while let Some(f) = out_rx.recv().await {
            if sink.feed(encode(&f)).await.is_err() {
                return;
            }
            while let Ok(f) = out_rx.try_recv() {
                if sink.feed(encode(&f)).await.is_err() {
                    return;
                }
            }
            if sink.flush().await.is_err() {
                return;
            }
        }
    });
    let decode = |bytes: &[u8]| {
        postcard::from_bytes::<Frame>(bytes).map_err(|e| std::io::Error::other(format!("undecodable peer frame: {e}")))
    };
    let from = match frames.next().await {
        Some(Ok(b)) => match decode(&b)? {
            Frame::Hello { from } => from,
            _ => return Err(std::io::Error::other("a peer must say hello first")),
        },
        Some(Err(e)) => return Err(e),
        None => return Ok(()),
    };
    tracing::debug!(peer = from, "peer connected");
    let result = loop {
        let bytes = match frames.next().await {
            Some(Ok(b)) => b,
            Some(Err(e)) => break Err(e),
            None => break Ok(()),
        };
        let (id, body) = match decode(&bytes)? {
            Frame::Req { id, body } => (id, body),
            _ => break Err(std::io::Error::other("unexpected frame from a peer")),
        };
        let reply = out_tx.clone();
        let respond = move |body: PeerResp| async move {
            let _ = reply.send(Frame::Resp { id, body }).await;
        };
        match body {
            PeerReq::Append(rpc) => {
                svc.leader_loss.appended(from);
                let raft = raft.clone();
                tokio::spawn(async move { respond(PeerResp::Append(raft.append_entries(rpc).await)).await });
            }
            PeerReq::Vote(rpc) => {
                let raft = raft.clone();
                tokio::spawn(async move { respond(PeerResp::Vote(raft.vote(rpc).await)).await });
            }
            PeerReq::Snapshot(rpc) => {
                let raft = raft.clone();
                tokio::spawn(async move { respond(PeerResp::Snapshot(raft.install_snapshot(rpc).await)).await });
            }
            PeerReq::Forward(req) => {
                // Proposed here, in the order this connection carries them.
                match raft.client_write_ff(req).await {
                    Ok(rx) => {
                        tokio::spawn(async move {
                            let r = match rx.await {
                                Ok(Ok(_)) => Ok(()),
                                Ok(Err(e)) => Err(e.to_string()),
                                Err(_) => Err("the leader dropped the write".to_string()),
                            };
                            respond(PeerResp::Forward(r)).await
                        });
                    }
                    Err(e) => respond(PeerResp::Forward(Err(e.to_string()))).await,
                }
            }
            PeerReq::ReadIndex => {
                let raft = raft.clone();
                tokio::spawn(async move {
                    let r = match raft.get_read_log_id().await {
                        Ok((read, _applied)) => Ok(read.map_or(0, |l| l.index)),
                        Err(e) => Err(e.to_string()),
                    };
                    respond(PeerResp::ReadIndex(r)).await
                });
            }
            PeerReq::Touch(list) => {
                let _ = core.try_send(CoreMsg::SessionsTouched(list));
            }
            PeerReq::Reconfig(spec) => {
                let svc = svc.clone();
                tokio::spawn(async move {
                    let r = super::reconfig::run(&svc.raft, &svc.core, &svc.peers, spec).await;
                    respond(PeerResp::Reconfig(r)).await
                });
            }
            PeerReq::Removed { at } => {
                tracing::warn!(
                    config = format_args!("{at:x}"),
                    "this server was removed from the ensemble's configuration: no longer serving"
                );
                svc.removed_at.fetch_max(at.max(1) as u64, Ordering::AcqRel);
            }
            PeerReq::Status => {
                let raft = raft.clone();
                tokio::spawn(async move {
                    let initialized = raft.is_initialized().await.unwrap_or(false);
                    respond(PeerResp::Status { initialized }).await
                });
            }
        }
    };
    svc.leader_loss.connection_ended(raft, from);
    drop(out_tx);
    let _ = writer.await;
    result
}

/// openraft's network: one client per target, over that target's link.
pub struct NetworkFactory {
    pub peers: Arc<Peers>,
}

pub struct PeerClient {
    my_id: u64,
    target: u64,
    link: Arc<Link>,
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerClient;

    async fn new_client(&mut self, target: u64, node: &PeerNode) -> PeerClient {
        self.peers.learn(target, node);
        PeerClient { my_id: self.peers.my_id(), target, link: self.peers.link(target) }
    }
}

type RpcErr<E = openraft::error::Infallible> = RPCError<u64, PeerNode, RaftError<u64, E>>;

impl PeerClient {
    async fn rpc<E: std::error::Error>(
        &self,
        action: RPCTypes,
        body: PeerReq,
        option: &RPCOption,
    ) -> Result<PeerResp, RpcErr<E>> {
        let deadline = option.hard_ttl();
        match self.link.call(body, deadline).await {
            Ok(r) => Ok(r),
            Err(LinkError::Timeout(..)) => {
                Err(RPCError::Timeout(Timeout { action, id: self.my_id, target: self.target, timeout: deadline }))
            }
            // Unreachable, not Network: openraft retries a network error at
            // once, and an unreachable peer only after `backoff`.
            Err(e) => Err(RPCError::Unreachable(Unreachable::new(&e))),
        }
    }

    fn unexpected<E: std::error::Error>(&self) -> RpcErr<E> {
        let e = std::io::Error::other("a peer answered with the wrong kind of response");
        RPCError::Network(NetworkError::new(&e))
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    /// Retries to an unreachable peer: soon at first (a restarted peer is
    /// back quickly), then every half second.
    fn backoff(&self) -> openraft::network::Backoff {
        let steps = [20u64, 50, 100, 200].into_iter().chain(std::iter::repeat(500));
        openraft::network::Backoff::new(steps.map(Duration::from_millis))
    }

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RpcErr> {
        match self.rpc(RPCTypes::AppendEntries, PeerReq::Append(rpc), &option).await? {
            PeerResp::Append(r) => r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e))),
            _ => Err(self.unexpected()),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<u64>, RpcErr<InstallSnapshotError>> {
        match self.rpc(RPCTypes::InstallSnapshot, PeerReq::Snapshot(rpc), &option).await? {
            PeerResp::Snapshot(r) => r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e))),
            _ => Err(self.unexpected()),
        }
    }

    async fn vote(&mut self, rpc: VoteRequest<u64>, option: RPCOption) -> Result<VoteResponse<u64>, RpcErr> {
        match self.rpc(RPCTypes::Vote, PeerReq::Vote(rpc), &option).await? {
            PeerResp::Vote(r) => r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e))),
            _ => Err(self.unexpected()),
        }
    }
}
