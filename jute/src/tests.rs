//! Property tests: every record round-trips; truncated or random input never
//! panics and never decodes a record from fewer bytes than it needs.

use crate::data::*;
use crate::proto::*;
use crate::txn::*;
use crate::{Jute, Sample, SampleRng};
use proptest::prelude::*;

fn round_trip<T: Jute + Sample + PartialEq + std::fmt::Debug>(seed: u64, cut: usize) {
    let mut rng = SampleRng::new(seed);
    let value = T::sample(&mut rng);
    let bytes = value.to_bytes();
    let mut r = crate::Reader::new(&bytes);
    let back = T::read_from(&mut r).expect("decode what we encoded");
    assert_eq!(back, value);
    assert_eq!(r.remaining(), 0, "decoder must consume exactly the encoding");
    // Any strict prefix is an error, never a panic or a shorter record.
    let cut = cut % bytes.len().max(1);
    if cut < bytes.len() {
        assert!(T::from_bytes(&bytes[..cut]).is_err());
    }
}

macro_rules! all_records {
    ($m:ident) => {
        $m! {
            Id, Acl, Stat, StatPersisted, ClientInfo, ConnectRequest, ConnectResponse,
            RequestHeader, ReplyHeader, WatcherEvent, CreateRequest, CreateTtlRequest,
            CreateResponse, Create2Response, DeleteRequest, ExistsRequest, ExistsResponse,
            GetDataRequest, GetDataResponse, SetDataRequest, SetDataResponse, GetAclRequest,
            GetAclResponse, SetAclRequest, SetAclResponse, GetChildrenRequest,
            GetChildrenResponse, GetChildren2Request, GetChildren2Response, SyncRequest,
            SyncResponse, CheckVersionRequest, MultiHeader, ErrorResponse, AuthPacket,
            SetSaslRequest, SetSaslResponse, SetWatches, SetWatches2, AddWatchRequest,
            RemoveWatchesRequest, CheckWatchesRequest, GetEphemeralsRequest,
            GetEphemeralsResponse, GetAllChildrenNumberRequest, GetAllChildrenNumberResponse,
            WhoAmIResponse, ReconfigRequest, TxnHeader, TxnDigest, CreateTxnV0, CreateTxn,
            CreateTtlTxn, CreateContainerTxn, DeleteTxn, SetDataTxn, CheckVersionTxn,
            SetAclTxn, SetMaxChildrenTxn, CreateSessionTxn, CloseSessionTxn, ErrorTxn, Txn,
            MultiTxn, FileHeader
        }
    };
}

macro_rules! round_trip_all {
    ($($t:ident),*) => {
        fn round_trip_every_record(seed: u64, cut: usize) {
            $(round_trip::<$t>(seed, cut);)*
        }
        fn decode_every_record(bytes: &[u8]) {
            $(let _ = $t::from_bytes(bytes);)*
        }
    };
}
all_records!(round_trip_all);

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_record_round_trips_and_rejects_prefixes(seed in any::<u64>(), cut in any::<usize>()) {
        round_trip_every_record(seed, cut);
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        decode_every_record(&bytes);
    }
}

#[test]
fn null_and_empty_buffers_differ() {
    let null = GetDataResponse { data: None, stat: Stat::default() }.to_bytes();
    let empty = GetDataResponse { data: Some(vec![]), stat: Stat::default() }.to_bytes();
    assert_eq!(&null[..4], &(-1i32).to_be_bytes());
    assert_eq!(&empty[..4], &0i32.to_be_bytes());
    assert_eq!(GetDataResponse::from_bytes(&null).unwrap().data, None);
    assert_eq!(GetDataResponse::from_bytes(&empty).unwrap().data, Some(vec![]));
}

#[test]
fn hostile_lengths_are_errors() {
    // A vector claiming 2^31-1 elements in a 4-byte body.
    assert!(GetChildrenResponse::from_bytes(&i32::MAX.to_be_bytes()).is_err());
    // A buffer of length -2.
    assert!(SetSaslRequest::from_bytes(&(-2i32).to_be_bytes()).is_err());
    // Null vector reads as empty.
    let v = GetChildrenResponse::from_bytes(&(-1i32).to_be_bytes()).unwrap();
    assert!(v.children.is_empty());
}

#[test]
fn stat_layout_matches_zookeeper() {
    // 6 longs and 5 ints: 68 bytes, in ZooKeeper's field order.
    let s = Stat {
        czxid: 1,
        mzxid: 2,
        ctime: 3,
        mtime: 4,
        version: 5,
        cversion: 6,
        aversion: 7,
        ephemeral_owner: 8,
        data_length: 9,
        num_children: 10,
        pzxid: 11,
    };
    let b = s.to_bytes();
    assert_eq!(b.len(), 68);
    assert_eq!(&b[0..8], &1i64.to_be_bytes());
    assert_eq!(&b[32..36], &5i32.to_be_bytes());
    assert_eq!(&b[60..68], &11i64.to_be_bytes());
}
