//! ZooKeeper's data tree digest (`hash` four-letter word, `/commands/hash`):
//! the 64-bit wrapping sum, over every node outside `/zookeeper/`, of the
//! CRC-32 of (path, data, 60 bytes of stat), digest version 2. The same tree
//! gives the same digest here and in ZooKeeper, so replicas and a migrated
//! ensemble can be compared.

use crate::tree::Node;
use std::sync::Arc;

/// ZooKeeper's `DigestCalculator.DIGEST_VERSION`.
pub const DIGEST_VERSION: i32 = 2;

const fn crc_tables() -> [[u32; 256]; 8] {
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut i = 0;
    while i < 256 {
        let mut s = 1;
        while s < 8 {
            let prev = t[s - 1][i];
            t[s][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            s += 1;
        }
        i += 1;
    }
    t
}

static TABLES: [[u32; 256]; 8] = crc_tables();

/// CRC-32 (IEEE, as `java.util.zip.CRC32`), continued from `crc`.
pub fn crc32_update(crc: u32, data: &[u8]) -> u32 {
    let t = &TABLES;
    let mut c = !crc;
    let mut chunks = data.chunks_exact(8);
    for ch in &mut chunks {
        let lo = u32::from_le_bytes([ch[0], ch[1], ch[2], ch[3]]) ^ c;
        let hi = u32::from_le_bytes([ch[4], ch[5], ch[6], ch[7]]);
        c = t[7][(lo & 0xff) as usize]
            ^ t[6][((lo >> 8) & 0xff) as usize]
            ^ t[5][((lo >> 16) & 0xff) as usize]
            ^ t[4][(lo >> 24) as usize]
            ^ t[3][(hi & 0xff) as usize]
            ^ t[2][((hi >> 8) & 0xff) as usize]
            ^ t[1][((hi >> 16) & 0xff) as usize]
            ^ t[0][(hi >> 24) as usize];
    }
    for &b in chunks.remainder() {
        c = t[0][((c ^ b as u32) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

/// One node's digest (`DigestCalculator.calculateDigest`), computed by the
/// same function that checks imported ZooKeeper snapshots.
pub fn node_digest(path: &str, node: &Node) -> u64 {
    crate::snapshot::zkformat::node_digest(path, node.data.as_deref(), &node.stat) as u32 as u64
}

/// The tree digest (`DataTree.getTreeDigest`): a wrapping sum, so the order
/// of the nodes does not matter.
pub fn tree_digest(nodes: &[(Arc<str>, Arc<Node>)]) -> i64 {
    nodes.iter().fold(0u64, |acc, (p, n)| acc.wrapping_add(node_digest(p, n))) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_known_values() {
        assert_eq!(crc32_update(0, b""), 0);
        assert_eq!(crc32_update(0, b"123456789"), 0xCBF4_3926);
        let long: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        let split = crc32_update(crc32_update(0, &long[..333]), &long[333..]);
        assert_eq!(split, crc32_update(0, &long));
        // bytewise reference
        let mut c = !0u32;
        for &b in &long {
            c ^= b as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            }
        }
        assert_eq!(!c, crc32_update(0, &long));
    }

    #[test]
    fn zookeeper_subtree_excluded() {
        let n = Node {
            data: Some(b"x".to_vec()),
            acl: Arc::new(vec![]),
            stat: Default::default(),
            children: Default::default(),
        };
        assert_eq!(node_digest("/zookeeper/quota", &n), 0);
        assert_ne!(node_digest("/zookeeper", &n), 0);
        assert_eq!(node_digest("/", &n), crc32_update(0, &[b"x".as_slice(), &[0u8; 60]].concat()) as u64);
    }
}
