//! `fk-bench`: the load generator behind `scripts/bench`.
//!
//! A raw-protocol ZooKeeper client written for measurement: many sessions,
//! each with N requests in flight (ZooKeeper answers a session's requests in
//! order, so a FIFO of send times per connection gives each request's
//! latency), latencies in a log-bucketed histogram (~3% resolution), and the
//! server's CPU time and RSS read from /proc before and after the measured
//! phase. Every run is bounded in time and in operations, and a watchdog
//! thread ends the process if anything hangs.
//!
//! ```text
//! fk-bench WORKLOAD --addr 127.0.0.1:PORT [--pid SERVER_PID] [options]
//! ```
//!
//! Workloads: `read`, `write`, `mixed`, `create-delete`, `bigtree` (pipelined
//! load), `watch` (fan-out), `sessions`, `ephemerals`, `probe` (wait until a
//! znode is readable, for restart times), `rtt` (loopback TCP echo) and
//! `fsync` (write+fdatasync in a directory). Each prints one JSON object on
//! stdout. Latencies are in microseconds, CPU in microseconds per operation,
//! memory in MiB.

use anyhow::{anyhow, bail, Context, Result};
use jute::data::{Acl, Stat};
use jute::proto::{
    create_mode, err, op, xid, ConnectRequest, ConnectResponse, CreateRequest, CreateResponse, DeleteRequest,
    ExistsRequest, GetAllChildrenNumberRequest, GetAllChildrenNumberResponse, GetDataRequest, ReplyHeader,
    RequestHeader, SetDataRequest,
};
use jute::Jute;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Barrier};

const ROOT: &str = "/fkbench";
/// Longest wait for any single frame before the run is declared broken.
const FRAME_TIMEOUT: Duration = Duration::from_secs(60);
const SESSION_TIMEOUT_MS: i32 = 30_000;

// ---------------------------------------------------------------------------
// Command line

struct Args {
    workload: String,
    opts: HashMap<String, String>,
}

impl Args {
    fn parse() -> Result<Args> {
        let mut it = std::env::args().skip(1);
        let workload =
            it.next().ok_or_else(|| anyhow!("usage: fk-bench WORKLOAD --addr HOST:PORT [--key value]..."))?;
        let mut opts = HashMap::new();
        while let Some(k) = it.next() {
            let Some(name) = k.strip_prefix("--") else { bail!("unexpected argument {k:?}") };
            let v = it.next().ok_or_else(|| anyhow!("--{name} needs a value"))?;
            opts.insert(name.to_owned(), v);
        }
        Ok(Args { workload, opts })
    }
    fn str(&self, k: &str, default: &str) -> String {
        self.opts.get(k).cloned().unwrap_or_else(|| default.to_owned())
    }
    fn u64(&self, k: &str, default: u64) -> Result<u64> {
        match self.opts.get(k) {
            None => Ok(default),
            Some(v) => v.replace('_', "").parse().with_context(|| format!("--{k} {v}")),
        }
    }
    fn f64(&self, k: &str, default: f64) -> Result<f64> {
        match self.opts.get(k) {
            None => Ok(default),
            Some(v) => v.parse().with_context(|| format!("--{k} {v}")),
        }
    }
}

// ---------------------------------------------------------------------------
// JSON output (flat objects of numbers and strings)

#[derive(Default)]
struct JsonOut(Vec<(String, String)>);

impl JsonOut {
    fn num(&mut self, k: &str, v: f64) -> &mut Self {
        let s = if v.is_finite() { format!("{}", (v * 1000.0).round() / 1000.0) } else { "null".into() };
        self.0.push((k.to_owned(), s));
        self
    }
    fn int(&mut self, k: &str, v: u64) -> &mut Self {
        self.0.push((k.to_owned(), v.to_string()));
        self
    }
    fn text(&mut self, k: &str, v: &str) -> &mut Self {
        let mut s = String::from("\"");
        for c in v.chars() {
            match c {
                '"' => s.push_str("\\\""),
                '\\' => s.push_str("\\\\"),
                c if (c as u32) < 0x20 => s.push_str(&format!("\\u{:04x}", c as u32)),
                c => s.push(c),
            }
        }
        s.push('"');
        self.0.push((k.to_owned(), s));
        self
    }
    fn hist(&mut self, prefix: &str, h: &Hist) -> &mut Self {
        self.int(&format!("{prefix}count"), h.n);
        self.num(&format!("{prefix}p50_us"), h.quantile_us(0.50));
        self.num(&format!("{prefix}p99_us"), h.quantile_us(0.99));
        self.num(&format!("{prefix}p999_us"), h.quantile_us(0.999));
        self.num(&format!("{prefix}max_us"), h.max as f64 / 1e3);
        self.num(&format!("{prefix}mean_us"), h.mean_us())
    }
    fn print(&self) {
        let body: Vec<String> = self.0.iter().map(|(k, v)| format!("\"{k}\": {v}")).collect();
        println!("{{{}}}", body.join(", "));
    }
}

// ---------------------------------------------------------------------------
// Latency histogram: 32 linear sub-buckets per power of two (values in ns).

const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;
const BUCKETS: usize = (SUB + (64 - SUB_BITS as u64) * SUB) as usize;

#[derive(Clone)]
struct Hist {
    counts: Vec<u64>,
    n: u64,
    max: u64,
    sum: u128,
}

impl Hist {
    fn new() -> Hist {
        Hist { counts: vec![0; BUCKETS], n: 0, max: 0, sum: 0 }
    }
    fn index(v: u64) -> usize {
        if v < SUB {
            return v as usize;
        }
        let e = 63 - v.leading_zeros();
        let sub = (v >> (e - SUB_BITS)) - SUB;
        (SUB + (e - SUB_BITS) as u64 * SUB + sub) as usize
    }
    fn lower_bound(i: usize) -> u64 {
        let i = i as u64;
        if i < SUB {
            return i;
        }
        let k = i - SUB;
        let e = (k / SUB) as u32 + SUB_BITS;
        (SUB + k % SUB) << (e - SUB_BITS)
    }
    fn record(&mut self, d: Duration) {
        let v = d.as_nanos().min(u64::MAX as u128) as u64;
        self.counts[Self::index(v)] += 1;
        self.n += 1;
        self.max = self.max.max(v);
        self.sum += v as u128;
    }
    fn merge(&mut self, o: &Hist) {
        for (a, b) in self.counts.iter_mut().zip(&o.counts) {
            *a += b;
        }
        self.n += o.n;
        self.max = self.max.max(o.max);
        self.sum += o.sum;
    }
    /// The q-quantile in microseconds: the middle of the bucket holding the
    /// ceil(q*n)-th smallest value, never above the largest value seen.
    fn quantile_us(&self, q: f64) -> f64 {
        if self.n == 0 {
            return f64::NAN;
        }
        let rank = ((q * self.n as f64).ceil() as u64).clamp(1, self.n);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let lo = Self::lower_bound(i);
                let hi = if i + 1 < BUCKETS { Self::lower_bound(i + 1) } else { u64::MAX };
                let mid = lo + (hi - lo) / 2;
                return mid.min(self.max) as f64 / 1e3;
            }
        }
        self.max as f64 / 1e3
    }
    fn mean_us(&self) -> f64 {
        if self.n == 0 {
            f64::NAN
        } else {
            self.sum as f64 / self.n as f64 / 1e3
        }
    }
}

// ---------------------------------------------------------------------------
// /proc readings

/// utime+stime of a process, in clock ticks.
fn cpu_ticks(pid: &str) -> Result<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).with_context(|| format!("/proc/{pid}/stat"))?;
    let after = &s[s.rfind(')').ok_or_else(|| anyhow!("bad /proc/{pid}/stat"))? + 1..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // After "(comm)": field 3 (state) is f[0]; utime is field 14, stime 15.
    Ok(f[11].parse::<u64>()? + f[12].parse::<u64>()?)
}

/// Time all CPUs spent running processes (user, nice, system; not irq and
/// softirq, which the kernel does not charge to processes), in clock ticks,
/// from the first line of /proc/stat.
fn machine_busy_ticks() -> Result<u64> {
    let s = std::fs::read_to_string("/proc/stat")?;
    let line = s.lines().next().ok_or_else(|| anyhow!("empty /proc/stat"))?;
    let f: Vec<u64> = line.split_whitespace().skip(1).map(|x| x.parse().unwrap_or(0)).collect();
    // user nice system (guest time is inside user)
    Ok(f.iter().take(3).sum())
}

fn rss_mib(pid: &str) -> Result<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    for line in s.lines() {
        if let Some(rest) = line.strip_prefix("VmRSS:") {
            let kb: f64 = rest.trim().trim_end_matches("kB").trim().parse()?;
            return Ok(kb / 1024.0);
        }
    }
    bail!("no VmRSS in /proc/{pid}/status")
}

/// CPU of the server (if --pid) and of this process, sampled together.
struct CpuProbe {
    server: Option<String>,
    tck: f64,
}

#[derive(Clone, Copy)]
struct CpuSample {
    server: u64,
    me: u64,
    machine: u64,
    at: Instant,
}

impl CpuProbe {
    fn new(args: &Args) -> Result<CpuProbe> {
        let pid = args.str("pid", "");
        Ok(CpuProbe { server: if pid.is_empty() { None } else { Some(pid) }, tck: args.f64("clk-tck", 100.0)? })
    }
    fn sample(&self) -> Result<CpuSample> {
        let server = match &self.server {
            Some(p) => cpu_ticks(p)?,
            None => 0,
        };
        Ok(CpuSample { server, me: cpu_ticks("self")?, machine: machine_busy_ticks()?, at: Instant::now() })
    }
    /// Adds server/client CPU per `unit` (an operation, a session...) and
    /// the server's RSS now.
    fn report(&self, out: &mut JsonOut, a: CpuSample, b: CpuSample, units: u64, unit: &str) -> Result<()> {
        let wall = b.at.duration_since(a.at).as_secs_f64();
        let us = |ticks: u64| ticks as f64 / self.tck * 1e6;
        let n = units.max(1) as f64;
        if let Some(p) = &self.server {
            out.num(&format!("server_cpu_us_per_{unit}"), us(b.server - a.server) / n);
            out.num("server_cpu_util", us(b.server - a.server) / 1e6 / wall);
            out.num("server_rss_mib", rss_mib(p)?);
        }
        out.num(&format!("client_cpu_us_per_{unit}"), us(b.me - a.me) / n);
        // CPU used by everything else on the machine meanwhile: other
        // people's tests disturb the figures.
        let other = (b.machine - a.machine).saturating_sub((b.server - a.server) + (b.me - a.me));
        out.num("other_cpu_util", us(other) / 1e6 / wall);
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Wire protocol

fn frame(out: &mut Vec<u8>, xid: i32, opcode: i32, body: &impl Jute) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    RequestHeader { xid, op: opcode }.write_to(out);
    body.write_to(out);
    let len = (out.len() - start - 4) as u32;
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
}

async fn read_frame<R: AsyncReadExt + Unpin>(r: &mut R, buf: &mut Vec<u8>) -> Result<()> {
    let fut = async {
        let len = r.read_u32().await? as usize;
        if len > 64 << 20 {
            bail!("frame of {len} bytes");
        }
        buf.resize(len, 0);
        r.read_exact(buf).await?;
        Ok(())
    };
    tokio::time::timeout(FRAME_TIMEOUT, fut).await.map_err(|_| anyhow!("no frame within {FRAME_TIMEOUT:?}"))?
}

/// Connects and opens a new session. Returns the stream and the session id.
async fn open_session(addr: &str) -> Result<(TcpStream, i64)> {
    let fut = async {
        let mut s = TcpStream::connect(addr).await.with_context(|| format!("connect {addr}"))?;
        s.set_nodelay(true)?;
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            time_out: SESSION_TIMEOUT_MS,
            session_id: 0,
            passwd: vec![0; 16],
        };
        let mut body = req.to_bytes();
        body.push(0); // readOnly = false
        let mut out = (body.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(&body);
        s.write_all(&out).await?;
        let mut buf = Vec::new();
        read_frame(&mut s, &mut buf).await?;
        let resp = ConnectResponse::from_bytes(&buf)?;
        if resp.session_id == 0 || resp.time_out <= 0 {
            bail!("session refused");
        }
        Ok((s, resp.session_id))
    };
    tokio::time::timeout(Duration::from_secs(20), fut).await.map_err(|_| anyhow!("session handshake timed out"))?
}

/// A one-request-at-a-time client, for setup, watches and sessions.
struct Client {
    stream: BufReader<TcpStream>,
    next_xid: i32,
    buf: Vec<u8>,
}

impl Client {
    async fn connect(addr: &str) -> Result<Client> {
        let (s, _) = open_session(addr).await?;
        Ok(Client { stream: BufReader::new(s), next_xid: 1, buf: Vec::new() })
    }

    async fn send(&mut self, opcode: i32, body: &[u8]) -> Result<i32> {
        let x = self.next_xid;
        self.next_xid += 1;
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(&[0; 4]);
        RequestHeader { xid: x, op: opcode }.write_to(&mut out);
        out.extend_from_slice(body);
        let len = (out.len() - 4) as u32;
        out[..4].copy_from_slice(&len.to_be_bytes());
        self.stream.get_mut().write_all(&out).await?;
        Ok(x)
    }

    /// Reads the next frame that is not a notification; returns its header
    /// (the body is in `self.buf` after the 16 header bytes).
    async fn reply(&mut self, want: i32) -> Result<ReplyHeader> {
        loop {
            read_frame(&mut self.stream, &mut self.buf).await?;
            let h = ReplyHeader::from_bytes(&self.buf)?;
            if h.xid == xid::NOTIFICATION {
                continue;
            }
            if h.xid != want {
                bail!("reply xid {} while waiting for {want}", h.xid);
            }
            return Ok(h);
        }
    }

    async fn call(&mut self, opcode: i32, body: &impl Jute) -> Result<ReplyHeader> {
        let x = self.send(opcode, &body.to_bytes()).await?;
        self.reply(x).await
    }

    fn body(&self) -> &[u8] {
        &self.buf[16..]
    }

    async fn close_session(mut self) -> Result<()> {
        let x = self.send(op::CLOSE_SESSION, &[]).await?;
        let _ = tokio::time::timeout(Duration::from_secs(10), self.reply(x)).await;
        Ok(())
    }

    /// Creates znodes (pipelined, all at once), accepting ones that exist.
    async fn create_all(&mut self, paths: &[String], data: &[u8], flags: i32) -> Result<()> {
        for chunk in paths.chunks(500) {
            let mut out = Vec::new();
            let first = self.next_xid;
            for p in chunk {
                let req = CreateRequest { path: p.clone(), data: Some(data.to_vec()), acl: Acl::open_unsafe(), flags };
                frame(&mut out, self.next_xid, op::CREATE, &req);
                self.next_xid += 1;
            }
            self.stream.get_mut().write_all(&out).await?;
            for (i, p) in chunk.iter().enumerate() {
                let h = self.reply(first + i as i32).await?;
                if h.err != err::OK && h.err != err::NODE_EXISTS {
                    bail!("create {p}: error {}", h.err);
                }
            }
        }
        Ok(())
    }
}

fn payload(size: usize, seed: u64) -> Vec<u8> {
    (0..size).map(|i| b'a' + ((i as u64 + seed) % 26) as u8).collect()
}

/// xorshift64*, for picking keys.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

// ---------------------------------------------------------------------------
// The pipelined load engine

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Read,
    Write,
    Mixed { read_pct: u64 },
    CreateDelete,
    BigCreate { buckets: u64, per_bucket: u64 },
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Op {
    Get,
    Set,
    Create,
    Delete,
}

impl Op {
    const ALL: [Op; 4] = [Op::Get, Op::Set, Op::Create, Op::Delete];
    fn name(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::Set => "set",
            Op::Create => "create",
            Op::Delete => "delete",
        }
    }
    fn idx(self) -> usize {
        self as usize
    }
}

/// What the reader hands back to the writer with each reply: a free slot,
/// or a slot that must be used to delete the node just created.
enum Credit {
    Any,
    Delete(String),
}

struct Spec {
    kind: Kind,
    conns: usize,
    depth: usize,
    duration: Duration,
    max_ops: u64,
    keys: u64,
    size: usize,
}

struct Shared {
    issued: AtomicU64,
    max_ops: u64,
    deadline: OnceLock<Instant>,
}

impl Shared {
    /// Claims the next operation number, or None when the run is over.
    fn claim(&self) -> Option<u64> {
        if Instant::now() >= *self.deadline.get().expect("deadline set") {
            return None;
        }
        let n = self.issued.fetch_add(1, Ordering::Relaxed);
        (n < self.max_ops).then_some(n)
    }
}

#[derive(Clone)]
struct ConnStats {
    hist: Vec<Hist>,
    errors: u64,
    done_at: Instant,
}

struct Pending {
    xid: i32,
    sent: Instant,
    op: Op,
}

async fn writer(
    mut w: OwnedWriteHalf,
    spec: Arc<Spec>,
    shared: Arc<Shared>,
    mut credits: mpsc::UnboundedReceiver<Credit>,
    pending: mpsc::UnboundedSender<Pending>,
    seed: u64,
) -> Result<OwnedWriteHalf> {
    let mut rng = Rng(seed | 1);
    let data = payload(spec.size, seed);
    let mut next_xid = 1i32;
    // Starts at `depth` so that the initial credits count as answers.
    let mut in_flight = spec.depth;
    let mut stopping = false;
    let mut out = Vec::with_capacity(64 * 1024);
    let mut batch = Vec::new();
    loop {
        if stopping && in_flight == 0 {
            break;
        }
        let Some(first) = credits.recv().await else { break };
        batch.push(first);
        while let Ok(c) = credits.try_recv() {
            batch.push(c);
        }
        for credit in batch.drain(..) {
            // Every credit but the initial `depth` ones answers a request.
            in_flight = in_flight.saturating_sub(1);
            let opc;
            match credit {
                Credit::Delete(path) => {
                    opc = Op::Delete;
                    frame(&mut out, next_xid, op::DELETE, &DeleteRequest { path, version: -1 });
                }
                Credit::Any => {
                    if stopping {
                        continue;
                    }
                    let Some(n) = shared.claim() else {
                        stopping = true;
                        continue;
                    };
                    opc = match spec.kind {
                        Kind::Read => Op::Get,
                        Kind::Write => Op::Set,
                        Kind::Mixed { read_pct } => {
                            if rng.below(100) < read_pct {
                                Op::Get
                            } else {
                                Op::Set
                            }
                        }
                        Kind::CreateDelete | Kind::BigCreate { .. } => Op::Create,
                    };
                    match (opc, spec.kind) {
                        (Op::Get, _) => {
                            let path = format!("{ROOT}/r/k-{}", rng.below(spec.keys));
                            frame(&mut out, next_xid, op::GET_DATA, &GetDataRequest { path, watch: false })
                        }
                        (Op::Set, _) => {
                            let path = format!("{ROOT}/r/k-{}", rng.below(spec.keys));
                            let req = SetDataRequest { path, data: Some(data.clone()), version: -1 };
                            frame(&mut out, next_xid, op::SET_DATA, &req)
                        }
                        (Op::Create, Kind::BigCreate { buckets, per_bucket }) => {
                            let b = (n / per_bucket).min(buckets - 1);
                            let req = CreateRequest {
                                path: format!("{ROOT}/big/b-{b}/n-{n}"),
                                data: Some(data.clone()),
                                acl: Acl::open_unsafe(),
                                flags: create_mode::PERSISTENT,
                            };
                            frame(&mut out, next_xid, op::CREATE, &req)
                        }
                        _ => {
                            let req = CreateRequest {
                                path: format!("{ROOT}/cd/n-"),
                                data: Some(data.clone()),
                                acl: Acl::open_unsafe(),
                                flags: create_mode::PERSISTENT_SEQUENTIAL,
                            };
                            frame(&mut out, next_xid, op::CREATE, &req)
                        }
                    }
                }
            }
            pending
                .send(Pending { xid: next_xid, sent: Instant::now(), op: opc })
                .map_err(|_| anyhow!("reader gone"))?;
            next_xid += 1;
            in_flight += 1;
        }
        if !out.is_empty() {
            w.write_all(&out).await?;
            out.clear();
        }
    }
    Ok(w)
}

/// The reader side of one connection; it counts in-flight requests through
/// the credits it returns (one per reply) so the writer can tell when the
/// pipeline is empty.
async fn reader(
    r: &mut BufReader<OwnedReadHalf>,
    credits: mpsc::UnboundedSender<Credit>,
    mut pending: mpsc::UnboundedReceiver<Pending>,
) -> Result<ConnStats> {
    let mut stats = ConnStats { hist: vec![Hist::new(); 4], errors: 0, done_at: Instant::now() };
    let mut buf = Vec::with_capacity(1024);
    while let Some(p) = pending.recv().await {
        let h = loop {
            read_frame(r, &mut buf).await?;
            let h = ReplyHeader::from_bytes(&buf)?;
            if h.xid != xid::NOTIFICATION {
                break h;
            }
        };
        let now = Instant::now();
        if h.xid != p.xid {
            bail!("reply for xid {} while xid {} was next", h.xid, p.xid);
        }
        stats.hist[p.op.idx()].record(now - p.sent);
        let credit = if h.err != err::OK {
            stats.errors += 1;
            Credit::Any
        } else if p.op == Op::Create {
            let resp = CreateResponse::from_bytes(&buf[16..])?;
            if resp.path.starts_with(&format!("{ROOT}/cd/")) {
                Credit::Delete(resp.path)
            } else {
                Credit::Any
            }
        } else {
            Credit::Any
        };
        // The writer may have finished (it stops once all slots are back).
        let _ = credits.send(credit);
        stats.done_at = now;
    }
    Ok(stats)
}

struct LoadResult {
    hist: Vec<Hist>,
    errors: u64,
    ops: u64,
    secs: f64,
}

/// Ends the process: a benchmark that lost a connection or a reply has no
/// result worth keeping, and tasks waiting at a barrier must not hang.
fn fatal(e: anyhow::Error) -> ! {
    eprintln!("fk-bench: {e:#}");
    std::process::exit(2)
}

/// Runs one pipelined load; `cpu` is sampled once every session is open and
/// again when the last reply has arrived (before the sessions are closed).
async fn run_load(addr: &str, spec: Spec, cpu: &CpuProbe, seed: u64) -> Result<(LoadResult, CpuSample, CpuSample)> {
    let spec = Arc::new(spec);
    let shared = Arc::new(Shared { issued: AtomicU64::new(0), max_ops: spec.max_ops, deadline: OnceLock::new() });
    let gate = Arc::new(Barrier::new(spec.conns + 1));
    let mut tasks = Vec::new();
    for c in 0..spec.conns {
        let (addr, spec, shared, gate) = (addr.to_owned(), spec.clone(), shared.clone(), gate.clone());
        tasks.push(tokio::spawn(async move {
            let run = async {
                let (stream, _) = open_session(&addr).await?;
                gate.wait().await; // all sessions open
                gate.wait().await; // go
                let (r, w) = stream.into_split();
                let (ctx, crx) = mpsc::unbounded_channel();
                let (ptx, prx) = mpsc::unbounded_channel();
                for _ in 0..spec.depth {
                    ctx.send(Credit::Any).expect("open channel");
                }
                let seed = seed.wrapping_mul(1_000_003).wrapping_add(c as u64 * 7919 + 1);
                let wtask = tokio::spawn(writer(w, spec.clone(), shared, crx, ptx, seed));
                let mut r = BufReader::with_capacity(64 * 1024, r);
                let stats = reader(&mut r, ctx, prx).await?;
                let w = wtask.await??;
                gate.wait().await; // everyone drained: the measurement ends
                let stream = r.into_inner().reunite(w).map_err(|_| anyhow!("reunite"))?;
                let client = Client { stream: BufReader::new(stream), next_xid: i32::MAX / 2, buf: Vec::new() };
                client.close_session().await?;
                Ok::<ConnStats, anyhow::Error>(stats)
            };
            run.await.unwrap_or_else(|e| fatal(e))
        }));
    }
    gate.wait().await;
    let before = cpu.sample()?;
    let _ = shared.deadline.set(Instant::now() + spec.duration);
    gate.wait().await;
    gate.wait().await;
    let after = cpu.sample()?;
    let mut hist = vec![Hist::new(); 4];
    let mut errors = 0;
    let mut end = before.at;
    for t in tasks {
        let s = t.await?;
        for (a, b) in hist.iter_mut().zip(&s.hist) {
            a.merge(b);
        }
        errors += s.errors;
        end = end.max(s.done_at);
    }
    let ops = hist.iter().map(|h| h.n).sum();
    Ok((LoadResult { hist, errors, ops, secs: end.duration_since(before.at).as_secs_f64() }, before, after))
}

fn report_load(out: &mut JsonOut, cpu: &CpuProbe, res: &LoadResult, a: CpuSample, b: CpuSample) -> Result<()> {
    let mut all = Hist::new();
    for h in &res.hist {
        all.merge(h);
    }
    out.int("ops", res.ops).int("errors", res.errors).num("secs", res.secs);
    out.num("ops_per_s", res.ops as f64 / res.secs.max(1e-9));
    out.hist("", &all);
    for o in Op::ALL {
        if res.hist[o.idx()].n > 0 && res.hist[o.idx()].n < res.ops {
            out.hist(&format!("{}_", o.name()), &res.hist[o.idx()]);
        }
    }
    cpu.report(out, a, b, res.ops, "op")
}

fn load_spec(args: &Args, kind: Kind, duration_default: f64) -> Result<Spec> {
    Ok(Spec {
        kind,
        conns: args.u64("conns", 16)?.max(1) as usize,
        depth: args.u64("depth", 32)?.max(1) as usize,
        duration: Duration::from_secs_f64(args.f64("duration", duration_default)?),
        max_ops: args.u64("max-ops", 10_000_000)?,
        keys: args.u64("keys", 1000)?.max(1),
        size: args.u64("size", 100)? as usize,
    })
}

/// read, write, mixed, create-delete: optional warm-up pass (same load,
/// discarded), then the measured pass.
async fn wl_load(args: &Args, addr: &str, kind: Kind) -> Result<JsonOut> {
    let cpu = CpuProbe::new(args)?;
    let mut setup = Client::connect(addr).await?;
    let size = args.u64("size", 100)? as usize;
    setup.create_all(&[ROOT.to_owned(), format!("{ROOT}/r"), format!("{ROOT}/cd")], b"", 0).await?;
    let keys = args.u64("keys", 1000)?;
    let paths: Vec<String> = (0..keys).map(|i| format!("{ROOT}/r/k-{i}")).collect();
    setup.create_all(&paths, &payload(size, 0), 0).await?;
    setup.close_session().await?;

    let warmup = args.f64("warmup", 0.0)?;
    if warmup > 0.0 {
        let mut spec = load_spec(args, kind, 5.0)?;
        spec.duration = Duration::from_secs_f64(warmup);
        run_load(addr, spec, &cpu, 99).await?;
    }
    let (res, a, b) = run_load(addr, load_spec(args, kind, 5.0)?, &cpu, 1).await?;
    let mut out = JsonOut::default();
    report_load(&mut out, &cpu, &res, a, b)?;
    Ok(out)
}

/// Creates `count` znodes of `size` bytes under ROOT/big/b-*/ (about
/// sqrt(count) buckets), then ROOT/big/last, the znode a restart must bring back.
async fn wl_bigtree(args: &Args, addr: &str) -> Result<JsonOut> {
    let cpu = CpuProbe::new(args)?;
    let count = args.u64("count", 1_000_000)?.max(1);
    let buckets = ((count as f64).sqrt().ceil() as u64).max(1);
    let per_bucket = count.div_ceil(buckets);
    let mut setup = Client::connect(addr).await?;
    let mut parents = vec![ROOT.to_owned(), format!("{ROOT}/big")];
    parents.extend((0..buckets).map(|b| format!("{ROOT}/big/b-{b}")));
    setup.create_all(&parents, b"", 0).await?;
    // An idle session would expire during a long load: open a new one after.
    setup.close_session().await?;
    let mut spec = load_spec(args, Kind::BigCreate { buckets, per_bucket }, 900.0)?;
    spec.max_ops = count;
    let (res, a, b) = run_load(addr, spec, &cpu, 3).await?;
    let mut setup = Client::connect(addr).await?;
    let h = setup
        .call(
            op::CREATE,
            &CreateRequest {
                path: format!("{ROOT}/big/last"),
                data: Some(payload(10, 0)),
                acl: Acl::open_unsafe(),
                flags: 0,
            },
        )
        .await?;
    if h.err != err::OK {
        bail!("create {ROOT}/big/last: error {}", h.err);
    }
    let total = count_children(&mut setup, &format!("{ROOT}/big")).await?;
    setup.close_session().await?;
    let mut out = JsonOut::default();
    report_load(&mut out, &cpu, &res, a, b)?;
    out.int("buckets", buckets).int("descendants", total);
    Ok(out)
}

async fn count_children(c: &mut Client, path: &str) -> Result<u64> {
    let h = c.call(op::GET_ALL_CHILDREN_NUMBER, &GetAllChildrenNumberRequest { path: path.to_owned() }).await?;
    if h.err != err::OK {
        bail!("getAllChildrenNumber {path}: error {}", h.err);
    }
    Ok(GetAllChildrenNumberResponse::from_bytes(c.body())?.total_number as u64)
}

/// Restart probe: retries connect + getData(--path) until it succeeds, then
/// prints the wall-clock time of success (ns since the epoch) and the
/// number of descendants of --count-path.
async fn wl_probe(args: &Args, addr: &str) -> Result<JsonOut> {
    let path = args.str("path", &format!("{ROOT}/big/last"));
    let deadline = Instant::now() + Duration::from_secs_f64(args.f64("timeout", 300.0)?);
    let mut attempts = 0u64;
    loop {
        attempts += 1;
        let attempt = async {
            let mut c = tokio::time::timeout(Duration::from_secs(5), Client::connect(addr)).await??;
            let h = c.call(op::GET_DATA, &GetDataRequest { path: path.clone(), watch: false }).await?;
            Ok::<_, anyhow::Error>((c, h))
        };
        match tokio::time::timeout(Duration::from_secs(10), attempt).await {
            Ok(Ok((mut c, h))) if h.err == err::OK => {
                let ready = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos() as u64;
                let mut out = JsonOut::default();
                out.int("ready_epoch_ns", ready).int("attempts", attempts);
                let cp = args.str("count-path", "");
                if !cp.is_empty() {
                    out.int("descendants", count_children(&mut c, &cp).await?);
                }
                c.close_session().await?;
                return Ok(out);
            }
            Ok(Ok((c, h))) => {
                let _ = c.close_session().await;
                if h.err != err::NO_NODE {
                    bail!("getData {path}: error {}", h.err);
                }
            }
            _ => {}
        }
        if Instant::now() > deadline {
            bail!("{path} not readable after {attempts} attempts");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Watch fan-out: `sessions` sessions each set a data watch on one znode;
/// one writer sets it; the time from sending the write to each
/// notification, `rounds` times (watches re-armed between rounds).
async fn wl_watch(args: &Args, addr: &str) -> Result<JsonOut> {
    let cpu = CpuProbe::new(args)?;
    let sessions = args.u64("sessions", 1000)?.max(1) as usize;
    let rounds = args.u64("rounds", 20)?.max(1) as usize;
    let path = format!("{ROOT}/w");
    let mut writer = Client::connect(addr).await?;
    writer.create_all(&[ROOT.to_owned(), path.clone()], &payload(100, 0), 0).await?;

    let t_open = Instant::now();
    let armed = Arc::new(Barrier::new(sessions + 1));
    let (ntx, mut nrx) = mpsc::unbounded_channel::<Instant>();
    let limit = Arc::new(tokio::sync::Semaphore::new(64));
    let mut tasks = Vec::new();
    for _ in 0..sessions {
        let (addr, path, armed, ntx, limit) =
            (addr.to_owned(), path.clone(), armed.clone(), ntx.clone(), limit.clone());
        tasks.push(tokio::spawn(async move {
            let run = async {
                let permit = limit.acquire().await?;
                let mut c = Client::connect(&addr).await?;
                drop(permit);
                for _ in 0..rounds {
                    let h = c.call(op::GET_DATA, &GetDataRequest { path: path.clone(), watch: true }).await?;
                    if h.err != err::OK {
                        bail!("getData watch: error {}", h.err);
                    }
                    armed.wait().await;
                    loop {
                        read_frame(&mut c.stream, &mut c.buf).await?;
                        let h = ReplyHeader::from_bytes(&c.buf)?;
                        if h.xid == xid::NOTIFICATION {
                            break;
                        }
                    }
                    let _ = ntx.send(Instant::now());
                }
                c.close_session().await
            };
            run.await.unwrap_or_else(|e| fatal(e))
        }));
    }
    drop(ntx);
    let mut notify = Hist::new();
    let mut write_lat = Hist::new();
    let mut all_notified = Vec::new();
    let mut first = None;
    for round in 0..rounds {
        armed.wait().await;
        if round == 0 {
            first = Some((cpu.sample()?, t_open.elapsed()));
        }
        let t0 = Instant::now();
        let h = writer
            .call(
                op::SET_DATA,
                &SetDataRequest { path: path.clone(), data: Some(payload(100, round as u64)), version: -1 },
            )
            .await?;
        write_lat.record(t0.elapsed());
        if h.err != err::OK {
            bail!("setData: error {}", h.err);
        }
        let mut last = t0;
        for _ in 0..sessions {
            let at = tokio::time::timeout(FRAME_TIMEOUT, nrx.recv())
                .await
                .map_err(|_| anyhow!("notifications missing in round {round}"))?
                .ok_or_else(|| anyhow!("watchers gone"))?;
            notify.record(at.saturating_duration_since(t0));
            last = last.max(at);
        }
        all_notified.push(last.duration_since(t0).as_secs_f64() * 1e3);
    }
    let after = cpu.sample()?;
    let (before, open_time) = first.expect("one round");
    for t in tasks {
        t.await?;
    }
    writer.close_session().await?;
    all_notified.sort_by(|a, b| a.total_cmp(b));
    let mut out = JsonOut::default();
    out.int("sessions", sessions as u64).int("rounds", rounds as u64);
    out.num("open_sessions_s", open_time.as_secs_f64());
    out.num("all_notified_ms", all_notified[all_notified.len() / 2]);
    out.num("all_notified_max_ms", *all_notified.last().expect("rounds"));
    out.num("notifications_per_s", (sessions * rounds) as f64 / (all_notified.iter().sum::<f64>() / 1e3).max(1e-9));
    out.hist("notify_", &notify);
    out.hist("write_", &write_lat);
    // Server CPU per notification includes re-arming the watch (a getData).
    cpu.report(&mut out, before, after, (sessions * rounds) as u64, "notification")?;
    Ok(out)
}

/// sessions: open and close `count` sessions, `concurrency` at a time.
/// ephemerals: the same, each session creating an ephemeral znode before
/// closing; then the time until the server shows none left.
async fn wl_sessions(args: &Args, addr: &str, ephemeral: bool) -> Result<JsonOut> {
    let cpu = CpuProbe::new(args)?;
    let count = args.u64("count", if ephemeral { 10_000 } else { 20_000 })?;
    let conc = args.u64("concurrency", 64)?.max(1) as usize;
    let parent = format!("{ROOT}/eph");
    let mut setup = Client::connect(addr).await?;
    setup.create_all(&[ROOT.to_owned(), parent.clone()], b"", 0).await?;
    setup.close_session().await?;
    let next = Arc::new(AtomicU64::new(0));
    let before = cpu.sample()?;
    let mut tasks = Vec::new();
    for _ in 0..conc {
        let (addr, next, parent) = (addr.to_owned(), next.clone(), parent.clone());
        tasks.push(tokio::spawn(async move {
            let run = async {
                let (mut open, mut create, mut close) = (Hist::new(), Hist::new(), Hist::new());
                let mut last = Instant::now();
                let data = payload(100, 0);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        break;
                    }
                    let t = Instant::now();
                    let mut c = Client::connect(&addr).await?;
                    open.record(t.elapsed());
                    if ephemeral {
                        let t = Instant::now();
                        let req = CreateRequest {
                            path: format!("{parent}/e-{i}"),
                            data: Some(data.clone()),
                            acl: Acl::open_unsafe(),
                            flags: create_mode::EPHEMERAL,
                        };
                        let h = c.call(op::CREATE, &req).await?;
                        create.record(t.elapsed());
                        if h.err != err::OK {
                            bail!("create ephemeral: error {}", h.err);
                        }
                    }
                    let t = Instant::now();
                    let x = c.send(op::CLOSE_SESSION, &[]).await?;
                    c.reply(x).await?;
                    last = Instant::now();
                    close.record(last - t);
                }
                Ok::<_, anyhow::Error>((open, create, close, last))
            };
            run.await.unwrap_or_else(|e| fatal(e))
        }));
    }
    let (mut open, mut create, mut close) = (Hist::new(), Hist::new(), Hist::new());
    let mut last_close = before.at;
    for t in tasks {
        let (o, c, cl, l) = t.await?;
        open.merge(&o);
        create.merge(&c);
        close.merge(&cl);
        last_close = last_close.max(l);
    }
    let mut out = JsonOut::default();
    out.int("sessions", count).int("concurrency", conc as u64);
    // Opened now: an idle session could expire during a long run.
    let mut monitor = Client::connect(addr).await?;
    if ephemeral {
        let mut polls = 0u64;
        let gone = loop {
            polls += 1;
            let h = monitor.call(op::EXISTS, &ExistsRequest { path: parent.clone(), watch: false }).await?;
            if h.err != err::OK {
                bail!("exists {parent}: error {}", h.err);
            }
            if Stat::from_bytes(monitor.body())?.num_children == 0 {
                break Instant::now();
            }
            if last_close.elapsed() > Duration::from_secs(120) {
                bail!("ephemerals still present 120 s after the last close");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        let after = cpu.sample()?;
        let total = gone.duration_since(before.at).as_secs_f64();
        out.num("all_gone_s", total);
        out.num("gone_after_last_close_ms", gone.duration_since(last_close).as_secs_f64() * 1e3);
        out.int("polls", polls);
        out.num("sessions_per_s", count as f64 / total.max(1e-9));
        out.hist("create_", &create);
        out.hist("open_", &open);
        out.hist("close_", &close);
        cpu.report(&mut out, before, after, count, "session")?;
    } else {
        let after = cpu.sample()?;
        let total = last_close.duration_since(before.at).as_secs_f64();
        out.num("secs", total);
        out.num("sessions_per_s", count as f64 / total.max(1e-9));
        out.hist("open_", &open);
        out.hist("close_", &close);
        cpu.report(&mut out, before, after, count, "session")?;
    }
    monitor.close_session().await?;
    Ok(out)
}

/// Loopback TCP round trip: a 64-byte message echoed by a task in this process.
async fn wl_rtt(args: &Args) -> Result<JsonOut> {
    let count = args.u64("count", 10_000)?.max(1);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let echo = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await?;
        s.set_nodelay(true)?;
        let mut b = [0u8; 64];
        loop {
            if s.read_exact(&mut b).await.is_err() {
                return Ok::<_, anyhow::Error>(());
            }
            s.write_all(&b).await?;
        }
    });
    let mut c = TcpStream::connect(addr).await?;
    c.set_nodelay(true)?;
    let mut h = Hist::new();
    let mut b = [7u8; 64];
    for i in 0..count + count / 10 {
        let t = Instant::now();
        c.write_all(&b).await?;
        c.read_exact(&mut b).await?;
        if i >= count / 10 {
            h.record(t.elapsed());
        }
    }
    drop(c);
    echo.await??;
    let mut out = JsonOut::default();
    out.hist("", &h);
    Ok(out)
}

/// write(128 bytes, appended) + fdatasync, in --dir.
fn wl_fsync(args: &Args) -> Result<JsonOut> {
    use std::io::Write;
    let dir = std::path::PathBuf::from(args.str("dir", "."));
    let count = args.u64("count", 50)?.max(1);
    let path = dir.join(format!("fk-bench-fsync-{}.tmp", std::process::id()));
    let mut f = std::fs::OpenOptions::new().create(true).write(true).truncate(true).open(&path)?;
    let mut h = Hist::new();
    for i in 0..count {
        let t = Instant::now();
        f.write_all(&payload(128, i))?;
        f.sync_data()?;
        h.record(t.elapsed());
    }
    drop(f);
    std::fs::remove_file(&path)?;
    let mut out = JsonOut::default();
    out.hist("", &h);
    Ok(out)
}

fn main() {
    let args = Args::parse().unwrap_or_else(|e| fatal(e));
    // Watchdog: whatever happens, this process ends.
    let limit = args.f64("hard-timeout", 900.0).unwrap_or(900.0);
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs_f64(limit));
        eprintln!("fk-bench: hard timeout of {limit} s reached");
        std::process::exit(3);
    });
    let threads = args.u64("threads", 2).unwrap_or(2).max(1) as usize;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .unwrap_or_else(|e| fatal(e.into()));
    let addr = args.str("addr", "127.0.0.1:2181");
    let started = Instant::now();
    let res = rt.block_on(async {
        match args.workload.as_str() {
            "read" => wl_load(&args, &addr, Kind::Read).await,
            "write" => wl_load(&args, &addr, Kind::Write).await,
            "mixed" => wl_load(&args, &addr, Kind::Mixed { read_pct: args.u64("read-pct", 90)? }).await,
            "create-delete" => wl_load(&args, &addr, Kind::CreateDelete).await,
            "bigtree" => wl_bigtree(&args, &addr).await,
            "probe" => wl_probe(&args, &addr).await,
            "watch" => wl_watch(&args, &addr).await,
            "sessions" => wl_sessions(&args, &addr, false).await,
            "ephemerals" => wl_sessions(&args, &addr, true).await,
            "rtt" => wl_rtt(&args).await,
            "fsync" => wl_fsync(&args),
            w => Err(anyhow!("unknown workload {w:?}")),
        }
    });
    match res {
        Ok(mut out) => {
            out.text("workload", &args.workload).num("elapsed_s", started.elapsed().as_secs_f64());
            out.print();
        }
        Err(e) => fatal(e),
    }
}
