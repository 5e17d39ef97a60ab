//! `org.apache.zookeeper.proto`: the client protocol's records and constants.

use crate::data::{Acl, ClientInfo, Stat};
use crate::jute_records;

jute_records! {
    /// The first frame of a connection. ZooKeeper clients since 3.3 append a
    /// `readOnly` byte after these fields; older ones do not. The byte is
    /// handled by the connection layer, which answers in the same shape.
    ConnectRequest {
        protocol_version: i32,
        last_zxid_seen: i64,
        time_out: i32,
        session_id: i64,
        passwd: Vec<u8>,
    }

    /// The answer to [`ConnectRequest`]; `readOnly` follows when the request
    /// carried it.
    ConnectResponse {
        protocol_version: i32,
        time_out: i32,
        session_id: i64,
        passwd: Vec<u8>,
    }

    RequestHeader { xid: i32, op: i32 }
    ReplyHeader { xid: i32, zxid: i64, err: i32 }

    /// The body of a notification (xid -1).
    WatcherEvent { event_type: i32, state: i32, path: String }

    CreateRequest { path: String, data: Option<Vec<u8>>, acl: Vec<Acl>, flags: i32 }
    CreateTtlRequest { path: String, data: Option<Vec<u8>>, acl: Vec<Acl>, flags: i32, ttl: i64 }
    CreateResponse { path: String }
    Create2Response { path: String, stat: Stat }
    DeleteRequest { path: String, version: i32 }
    ExistsRequest { path: String, watch: bool }
    ExistsResponse { stat: Stat }
    GetDataRequest { path: String, watch: bool }
    GetDataResponse { data: Option<Vec<u8>>, stat: Stat }
    SetDataRequest { path: String, data: Option<Vec<u8>>, version: i32 }
    SetDataResponse { stat: Stat }
    GetAclRequest { path: String }
    GetAclResponse { acl: Vec<Acl>, stat: Stat }
    SetAclRequest { path: String, acl: Vec<Acl>, version: i32 }
    SetAclResponse { stat: Stat }
    GetChildrenRequest { path: String, watch: bool }
    GetChildrenResponse { children: Vec<String> }
    GetChildren2Request { path: String, watch: bool }
    GetChildren2Response { children: Vec<String>, stat: Stat }
    SyncRequest { path: String }
    SyncResponse { path: String }
    CheckVersionRequest { path: String, version: i32 }

    /// Precedes each operation of a multi request and each result of its
    /// reply; `done` with type -1 ends the list.
    MultiHeader { op: i32, done: bool, err: i32 }
    ErrorResponse { err: i32 }

    AuthPacket { auth_type: i32, scheme: String, auth: Vec<u8> }
    SetSaslRequest { token: Vec<u8> }
    SetSaslResponse { token: Vec<u8> }

    SetWatches {
        relative_zxid: i64,
        data_watches: Vec<String>,
        exist_watches: Vec<String>,
        child_watches: Vec<String>,
    }
    SetWatches2 {
        relative_zxid: i64,
        data_watches: Vec<String>,
        exist_watches: Vec<String>,
        child_watches: Vec<String>,
        persistent_watches: Vec<String>,
        persistent_recursive_watches: Vec<String>,
    }
    AddWatchRequest { path: String, mode: i32 }
    RemoveWatchesRequest { path: String, watcher_type: i32 }
    CheckWatchesRequest { path: String, watcher_type: i32 }

    GetEphemeralsRequest { prefix_path: String }
    GetEphemeralsResponse { ephemerals: Vec<String> }
    GetAllChildrenNumberRequest { path: String }
    GetAllChildrenNumberResponse { total_number: i32 }
    WhoAmIResponse { client_info: Vec<ClientInfo> }

    ReconfigRequest {
        joining_servers: Option<String>,
        leaving_servers: Option<String>,
        new_members: Option<String>,
        cur_config_id: i64,
    }
}

/// Operation codes (`ZooDefs.OpCode`).
pub mod op {
    pub const NOTIFICATION: i32 = 0;
    pub const CREATE: i32 = 1;
    pub const DELETE: i32 = 2;
    pub const EXISTS: i32 = 3;
    pub const GET_DATA: i32 = 4;
    pub const SET_DATA: i32 = 5;
    pub const GET_ACL: i32 = 6;
    pub const SET_ACL: i32 = 7;
    pub const GET_CHILDREN: i32 = 8;
    pub const SYNC: i32 = 9;
    pub const PING: i32 = 11;
    pub const GET_CHILDREN2: i32 = 12;
    pub const CHECK: i32 = 13;
    pub const MULTI: i32 = 14;
    pub const CREATE2: i32 = 15;
    pub const RECONFIG: i32 = 16;
    pub const CHECK_WATCHES: i32 = 17;
    pub const REMOVE_WATCHES: i32 = 18;
    pub const CREATE_CONTAINER: i32 = 19;
    pub const DELETE_CONTAINER: i32 = 20;
    pub const CREATE_TTL: i32 = 21;
    pub const MULTI_READ: i32 = 22;
    pub const AUTH: i32 = 100;
    pub const SET_WATCHES: i32 = 101;
    pub const SASL: i32 = 102;
    pub const GET_EPHEMERALS: i32 = 103;
    pub const GET_ALL_CHILDREN_NUMBER: i32 = 104;
    pub const SET_WATCHES2: i32 = 105;
    pub const ADD_WATCH: i32 = 106;
    pub const WHO_AM_I: i32 = 107;
    pub const CREATE_SESSION: i32 = -10;
    pub const CLOSE_SESSION: i32 = -11;
    pub const ERROR: i32 = -1;
}

/// Result codes (`KeeperException.Code`). They travel in reply headers and
/// multi results; they are values, never Rust errors.
pub mod err {
    pub const OK: i32 = 0;
    pub const SYSTEM_ERROR: i32 = -1;
    pub const RUNTIME_INCONSISTENCY: i32 = -2;
    pub const DATA_INCONSISTENCY: i32 = -3;
    pub const CONNECTION_LOSS: i32 = -4;
    pub const MARSHALLING_ERROR: i32 = -5;
    pub const UNIMPLEMENTED: i32 = -6;
    pub const OPERATION_TIMEOUT: i32 = -7;
    pub const BAD_ARGUMENTS: i32 = -8;
    pub const UNKNOWN_SESSION: i32 = -12;
    pub const NEW_CONFIG_NO_QUORUM: i32 = -13;
    pub const RECONFIG_IN_PROGRESS: i32 = -14;
    pub const API_ERROR: i32 = -100;
    pub const NO_NODE: i32 = -101;
    pub const NO_AUTH: i32 = -102;
    pub const BAD_VERSION: i32 = -103;
    pub const NO_CHILDREN_FOR_EPHEMERALS: i32 = -108;
    pub const NODE_EXISTS: i32 = -110;
    pub const NOT_EMPTY: i32 = -111;
    pub const SESSION_EXPIRED: i32 = -112;
    pub const INVALID_CALLBACK: i32 = -113;
    pub const INVALID_ACL: i32 = -114;
    pub const AUTH_FAILED: i32 = -115;
    pub const SESSION_MOVED: i32 = -118;
    pub const NOT_READ_ONLY: i32 = -119;
    pub const EPHEMERAL_ON_LOCAL_SESSION: i32 = -120;
    pub const NO_WATCHER: i32 = -121;
    pub const REQUEST_TIMEOUT: i32 = -122;
    pub const RECONFIG_DISABLED: i32 = -123;
    pub const SESSION_CLOSED_REQUIRE_SASL_AUTH: i32 = -124;
    pub const QUOTA_EXCEEDED: i32 = -125;
    pub const THROTTLED_OP: i32 = -127;
}

/// Reserved xids.
pub mod xid {
    pub const NOTIFICATION: i32 = -1;
    pub const PING: i32 = -2;
    pub const AUTH: i32 = -4;
    pub const SET_WATCHES: i32 = -8;
}

/// `CreateMode` flags.
pub mod create_mode {
    pub const PERSISTENT: i32 = 0;
    pub const EPHEMERAL: i32 = 1;
    pub const PERSISTENT_SEQUENTIAL: i32 = 2;
    pub const EPHEMERAL_SEQUENTIAL: i32 = 3;
    pub const CONTAINER: i32 = 4;
    pub const PERSISTENT_WITH_TTL: i32 = 5;
    pub const PERSISTENT_SEQUENTIAL_WITH_TTL: i32 = 6;
}

/// `Watcher.Event.EventType`.
pub mod event_type {
    pub const NONE: i32 = -1;
    pub const NODE_CREATED: i32 = 1;
    pub const NODE_DELETED: i32 = 2;
    pub const NODE_DATA_CHANGED: i32 = 3;
    pub const NODE_CHILDREN_CHANGED: i32 = 4;
    pub const DATA_WATCH_REMOVED: i32 = 5;
    pub const CHILD_WATCH_REMOVED: i32 = 6;
    pub const PERSISTENT_WATCH_REMOVED: i32 = 7;
}

/// `Watcher.Event.KeeperState`.
pub mod keeper_state {
    pub const DISCONNECTED: i32 = 0;
    pub const SYNC_CONNECTED: i32 = 3;
    pub const AUTH_FAILED: i32 = 4;
    pub const CONNECTED_READ_ONLY: i32 = 5;
    pub const SASL_AUTHENTICATED: i32 = 6;
    pub const EXPIRED: i32 = -112;
    pub const CLOSED: i32 = 7;
}

/// `Watcher.WatcherType`, as sent by checkWatches/removeWatches.
pub mod watcher_type {
    pub const CHILDREN: i32 = 1;
    pub const DATA: i32 = 2;
    pub const ANY: i32 = 3;
    pub const PERSISTENT: i32 = 4;
    pub const PERSISTENT_RECURSIVE: i32 = 5;
}

/// `AddWatchMode`.
pub mod add_watch_mode {
    pub const PERSISTENT: i32 = 0;
    pub const PERSISTENT_RECURSIVE: i32 = 1;
}
