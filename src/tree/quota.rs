//! Quotas, as ZooKeeper keeps them: a limit on a subtree lives in
//! `/zookeeper/quota<path>/zookeeper_limits` ("count=..,bytes=..,
//! countHardLimit=..,byteHardLimit=.."), and the server maintains the
//! subtree's usage in `/zookeeper/quota<path>/zookeeper_stats`
//! ("count=..,bytes.."). Soft limits are logged when exceeded; hard limits
//! refuse the write with QUOTAEXCEEDED when `zookeeper.enforceQuota` is on.
//!
//! The stats node's data is updated in place without touching its stat
//! (version, mzxid), as ZooKeeper does.

use super::{node_in, DataTree, QUOTA_ZOOKEEPER};
use jute::proto::err;

pub const LIMIT_NODE: &str = "zookeeper_limits";
pub const STAT_NODE: &str = "zookeeper_stats";

/// A parsed `StatsTrack` string; absent keys are -1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatsTrack {
    pub count: i64,
    pub bytes: i64,
    pub count_hard_limit: i64,
    pub byte_hard_limit: i64,
}

impl StatsTrack {
    pub fn parse(data: Option<&[u8]>) -> Self {
        let mut s = StatsTrack { count: -1, bytes: -1, count_hard_limit: -1, byte_hard_limit: -1 };
        let Some(d) = data else { return s };
        // ZooKeeper writes extra keys after "count=..,bytes=..=" as
        // ";key=value" pairs, and splits on both separators.
        let text = String::from_utf8_lossy(d);
        for part in text.split([',', ';']).filter(|p| !p.is_empty()) {
            let mut kv = part.split('=');
            let (Some(k), Some(v)) = (kv.next(), kv.next()) else { continue };
            let Ok(v) = v.trim().parse::<i64>() else { continue };
            match k.trim() {
                "count" => s.count = v,
                "bytes" => s.bytes = v,
                "countHardLimit" => s.count_hard_limit = v,
                "byteHardLimit" => s.byte_hard_limit = v,
                _ => {}
            }
        }
        s
    }

    /// The usage format of a stats node.
    pub fn usage_string(count: i64, bytes: i64) -> String {
        format!("count={count},bytes={bytes}")
    }
}

fn stat_path(prefix: &str) -> String {
    format!("{QUOTA_ZOOKEEPER}{prefix}/{STAT_NODE}")
}

fn limit_path(prefix: &str) -> String {
    format!("{QUOTA_ZOOKEEPER}{prefix}/{LIMIT_NODE}")
}

impl DataTree {
    /// The deepest path with a quota that covers `path` (`getMaxPrefixWithQuota`).
    pub fn quota_prefix(&self, path: &str) -> Option<String> {
        let mut best: Option<&String> = None;
        for p in &self.quota_paths {
            let covers = path == p || (path.starts_with(p.as_str()) && path.as_bytes().get(p.len()) == Some(&b'/'));
            if covers && p != "/" && best.is_none_or(|b| p.len() > b.len()) {
                best = Some(p);
            }
        }
        best.cloned()
    }

    /// The hard-limit check run before a create (count +1) or setData.
    pub(super) fn check_quota(
        &self,
        ctx: &super::TxnContext,
        path: &str,
        bytes_diff: i64,
        count_diff: i64,
    ) -> Result<(), i32> {
        if !ctx.rules.enforce_quota {
            return Ok(());
        }
        let Some(prefix) = self.quota_prefix(path) else {
            return Ok(());
        };
        let Some(limit) = self.nodes.get(&*limit_path(&prefix)) else {
            return Ok(());
        };
        let limit = StatsTrack::parse(limit.data.as_deref());
        let Some(usage) = self.nodes.get(&*stat_path(&prefix)) else {
            return Ok(());
        };
        let usage = StatsTrack::parse(usage.data.as_deref());
        if count_diff != 0 && limit.count_hard_limit > -1 && usage.count + count_diff > limit.count_hard_limit {
            tracing::warn!(
                "Quota exceeded: {prefix} [current count={}, hardCountLimit={}]",
                usage.count + count_diff,
                limit.count_hard_limit
            );
            return Err(err::QUOTA_EXCEEDED);
        }
        if bytes_diff != 0 && limit.byte_hard_limit > -1 && usage.bytes + bytes_diff > limit.byte_hard_limit {
            tracing::warn!(
                "Quota exceeded: {prefix} [current bytes={}, hardByteLimit={}]",
                usage.bytes + bytes_diff,
                limit.byte_hard_limit
            );
            return Err(err::QUOTA_EXCEEDED);
        }
        Ok(())
    }

    /// Accounts a change under a quota'd subtree in its stats node.
    pub(super) fn update_quota_usage(&mut self, path: &str, bytes_diff: i64, count_diff: i64) {
        let Some(prefix) = self.quota_prefix(path) else {
            return;
        };
        let sp = stat_path(&prefix);
        if !self.nodes.contains_key(&*sp) {
            return;
        }
        self.save(&sp);
        let node = node_in(&mut self.nodes, &sp).expect("checked");
        let usage = StatsTrack::parse(node.data.as_deref());
        let (count, bytes) = (usage.count + count_diff, usage.bytes + bytes_diff);
        let new = StatsTrack::usage_string(count, bytes).into_bytes();
        let old_len = node.data.as_ref().map_or(0, |d| d.len()) as u64;
        self.data_bytes = self.data_bytes - old_len + new.len() as u64;
        node.data = Some(new);
        if let Some(limit) = self.nodes.get(&*limit_path(&prefix)) {
            let limit = StatsTrack::parse(limit.data.as_deref());
            if limit.count > -1 && count > limit.count {
                tracing::warn!("Quota exceeded: {prefix} count={count} limit={}", limit.count);
            }
            if limit.bytes > -1 && bytes > limit.bytes {
                tracing::warn!("Quota exceeded: {prefix} bytes={bytes} limit={}", limit.bytes);
            }
        }
    }

    /// Creating a stats node fills it with the subtree's current usage.
    /// (Limit nodes are tracked as they enter and leave the tree, in
    /// `put_node`, so a rolled-back multi untracks them too.)
    pub(super) fn on_quota_node_created(&mut self, parent: &str, name: &str) {
        let Some(target) = parent.strip_prefix(QUOTA_ZOOKEEPER) else {
            return;
        };
        if target.is_empty() {
            return;
        }
        if name == STAT_NODE {
            let (mut count, mut bytes) = (0i64, 0i64);
            let prefix = format!("{target}/");
            for (p, n) in &self.nodes {
                if &**p == target || p.starts_with(&prefix) {
                    count += 1;
                    bytes += n.data.as_ref().map_or(0, |d| d.len()) as i64;
                }
            }
            let sp = stat_path(target);
            if let Some(node) = node_in(&mut self.nodes, &sp) {
                let new = StatsTrack::usage_string(count, bytes).into_bytes();
                let old_len = node.data.as_ref().map_or(0, |d| d.len()) as u64;
                self.data_bytes = self.data_bytes - old_len + new.len() as u64;
                node.data = Some(new);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_zookeeper_limit_strings() {
        let s = StatsTrack::parse(Some(b"count=3,bytes=100=;byteHardLimit=20;countHardLimit=3"));
        assert_eq!(s, StatsTrack { count: 3, bytes: 100, count_hard_limit: 3, byte_hard_limit: 20 });
        let s = StatsTrack::parse(Some(b"count=-1,bytes=-1"));
        assert_eq!((s.count, s.count_hard_limit), (-1, -1));
    }
}
