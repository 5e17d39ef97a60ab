//! Codec micro-benchmarks: the records on the hot request path.
//! `cargo bench -p jute` (not part of the test command).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use jute::data::{Acl, Stat};
use jute::proto::{CreateRequest, GetDataRequest, GetDataResponse, ReplyHeader, RequestHeader};
use jute::{Jute, Reader};
use std::hint::black_box;

fn stat() -> Stat {
    Stat {
        czxid: 7,
        mzxid: 9,
        ctime: 1_700_000_000_000,
        mtime: 1_700_000_000_500,
        version: 3,
        data_length: 100,
        ..Default::default()
    }
}

fn codec(c: &mut Criterion) {
    let mut g = c.benchmark_group("codec");
    g.throughput(Throughput::Elements(1));
    let req = {
        let mut b = RequestHeader { xid: 42, op: 4 }.to_bytes();
        GetDataRequest { path: "/bench/node-0000012345".into(), watch: false }.write_to(&mut b);
        b
    };
    g.bench_function("decode getData request", |b| {
        b.iter(|| {
            let r = &mut Reader::new(black_box(&req));
            let h = RequestHeader::read_from(r).unwrap();
            let q = GetDataRequest::read_from(r).unwrap();
            black_box((h, q))
        })
    });
    let resp = GetDataResponse { data: Some(vec![7u8; 100]), stat: stat() };
    g.bench_function("encode getData reply (100 B)", |b| {
        b.iter_batched(
            || Vec::with_capacity(256),
            |mut out| {
                ReplyHeader { xid: 42, zxid: 99, err: 0 }.write_to(&mut out);
                black_box(&resp).write_to(&mut out);
                out
            },
            BatchSize::SmallInput,
        )
    });
    let create =
        CreateRequest { path: "/bench/seq-".into(), data: Some(vec![1u8; 100]), acl: Acl::open_unsafe(), flags: 2 }
            .to_bytes();
    g.bench_function("decode create request (100 B)", |b| {
        b.iter(|| black_box(CreateRequest::from_bytes(black_box(&create)).unwrap()))
    });
    g.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
