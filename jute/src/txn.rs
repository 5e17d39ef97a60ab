//! `org.apache.zookeeper.txn` and the server's file records: what a
//! transaction log and a snapshot contain.

use crate::data::Acl;
use crate::jute_records;

jute_records! {
    TxnHeader { client_id: i64, cxid: i32, zxid: i64, time: i64, txn_type: i32 }
    TxnDigest { version: i32, tree_digest: i64 }
    CreateTxnV0 { path: String, data: Option<Vec<u8>>, acl: Vec<Acl>, ephemeral: bool }
    CreateTxn { path: String, data: Option<Vec<u8>>, acl: Vec<Acl>, ephemeral: bool, parent_cversion: i32 }
    CreateTtlTxn { path: String, data: Option<Vec<u8>>, acl: Vec<Acl>, parent_cversion: i32, ttl: i64 }
    CreateContainerTxn { path: String, data: Option<Vec<u8>>, acl: Vec<Acl>, parent_cversion: i32 }
    DeleteTxn { path: String }
    SetDataTxn { path: String, data: Option<Vec<u8>>, version: i32 }
    CheckVersionTxn { path: String, version: i32 }
    SetAclTxn { path: String, acl: Vec<Acl>, version: i32 }
    SetMaxChildrenTxn { path: String, max: i32 }
    CreateSessionTxn { time_out: i32 }
    CloseSessionTxn { paths2_delete: Vec<String> }
    ErrorTxn { err: i32 }
    /// One operation of a [`MultiTxn`]: its type and its encoded txn record.
    Txn { txn_type: i32, data: Vec<u8> }
    MultiTxn { txns: Vec<Txn> }
    /// The header of ZooKeeper's snapshot and log files (magic `ZKSN`/`ZKLG`).
    FileHeader { magic: i32, version: i32, dbid: i64 }
}
