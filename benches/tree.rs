//! Data-tree micro-benchmarks: `apply` of the common writes on a tree of
//! 100,000 znodes, and the snapshot hand-off. `cargo bench --bench tree`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ferrokeeper::tree::{CreateOp, DataTree, TreeConfig, TxnContext, WriteOp};
use jute::data::Acl;
use jute::proto::op;
use std::hint::black_box;

const RULES: TreeConfig = TreeConfig { extended_types: false, skip_acl: false, enforce_quota: false };

fn ctx(zxid: i64) -> TxnContext<'static> {
    TxnContext { session_id: 1, zxid, time_ms: zxid, auth: &[], rules: RULES }
}

fn create(path: String) -> WriteOp {
    WriteOp::Create(CreateOp {
        path,
        data: Some(vec![0u8; 100]),
        acl: Acl::open_unsafe(),
        flags: 0,
        ttl: -1,
        opcode: op::CREATE,
    })
}

fn tree(n: usize) -> (DataTree, i64) {
    let mut t = DataTree::new(TreeConfig::default());
    let mut zxid = 1;
    t.apply(&ctx(zxid), &create("/b".into()));
    for i in 0..n {
        zxid += 1;
        t.apply(&ctx(zxid), &create(format!("/b/n{i:07}")));
    }
    (t, zxid)
}

fn apply(c: &mut Criterion) {
    let (mut t, mut zxid) = tree(100_000);
    let mut g = c.benchmark_group("apply (100k znodes)");
    g.throughput(Throughput::Elements(1));
    let mut i = 0u64;
    g.bench_function("setData 100 B", |b| {
        b.iter(|| {
            zxid += 1;
            i += 1;
            let path = format!("/b/n{:07}", i % 100_000);
            black_box(t.apply(&ctx(zxid), &WriteOp::SetData { path, data: Some(vec![1u8; 100]), version: -1 }))
        })
    });
    g.bench_function("create + delete", |b| {
        b.iter(|| {
            zxid += 2;
            let path = "/b/tmp".to_string();
            t.apply(&ctx(zxid - 1), &create(path.clone()));
            black_box(t.apply(&ctx(zxid), &WriteOp::Delete { path, version: -1 }))
        })
    });
    g.finish();
    let mut g = c.benchmark_group("snapshot hand-off");
    g.sample_size(20);
    g.bench_function("share_nodes, 100k znodes", |b| b.iter(|| black_box(t.share_nodes().len())));
    g.finish();
}

criterion_group!(benches, apply);
criterion_main!(benches);
