//! ACL rules: ZooKeeper's `checkACL`, `fixupACL`, the digest and ip
//! providers, and getACL masking. Pure functions of their inputs.

use base64::Engine;
use jute::data::{perms, Acl, Id};
use sha1::{Digest, Sha1};
use std::net::IpAddr;

/// `user:base64(sha1("user:password"))` for an auth string `user:password`,
/// as `DigestAuthenticationProvider.generateDigest`.
pub fn generate_digest(id_password: &str) -> String {
    let user = id_password.split(':').next().unwrap_or("");
    let digest = Sha1::digest(id_password.as_bytes());
    format!("{user}:{}", base64::engine::general_purpose::STANDARD.encode(digest))
}

/// Java's `String.split(regex)` with limit 0: trailing empty parts dropped.
fn java_split(s: &str, sep: char) -> Vec<&str> {
    let mut parts: Vec<&str> = s.split(sep).collect();
    while parts.len() > 1 && parts.last() == Some(&"") {
        parts.pop();
    }
    parts
}

fn parse_ip(s: &str) -> Option<Vec<u8>> {
    // Java's v4addr2Bytes accepts only dotted quads; std also accepts IPv6.
    match s.parse::<IpAddr>().ok()? {
        IpAddr::V4(a) => Some(a.octets().to_vec()),
        IpAddr::V6(a) => Some(a.octets().to_vec()),
    }
}

fn ip_acl_parts(expr: &str) -> Option<(Vec<u8>, usize)> {
    let mut it = expr.splitn(2, '/');
    let addr = parse_ip(it.next()?)?;
    let max_bits = addr.len() * 8;
    let bits = match it.next() {
        None => max_bits,
        Some(b) => {
            let b: i64 = b.parse().ok()?;
            if b < 0 || b as usize > max_bits {
                return None;
            }
            b as usize
        }
    };
    Some((addr, bits))
}

fn ip_matches(client: &str, expr: &str) -> bool {
    let Some((acl_addr, bits)) = ip_acl_parts(expr) else {
        return false;
    };
    let Some(remote) = parse_ip(client) else {
        return false;
    };
    if remote.len() != acl_addr.len() {
        return false;
    }
    for i in 0..acl_addr.len() {
        let take = bits.saturating_sub(i * 8).min(8);
        let mask: u8 = if take == 0 { 0 } else { 0xffu8 << (8 - take) };
        if remote[i] & mask != acl_addr[i] & mask {
            return false;
        }
    }
    true
}

/// Whether an id is well-formed for its scheme (`ServerAuthenticationProvider.isValid`).
/// `None` when the scheme has no provider on this server.
fn provider_is_valid(scheme: &str, id: &str) -> Option<bool> {
    match scheme {
        "digest" => Some(java_split(id, ':').len() == 2),
        "ip" => Some(ip_acl_parts(id).is_some()),
        _ => None,
    }
}

fn provider_matches(scheme: &str, auth_id: &str, acl_id: &str) -> bool {
    match scheme {
        "digest" => auth_id == acl_id,
        "ip" => ip_matches(auth_id, acl_id),
        _ => false,
    }
}

/// Whether an authenticated id of this scheme may stand in for an `auth` ACL.
fn provider_is_authenticated(scheme: &str) -> Option<bool> {
    match scheme {
        "digest" => Some(true),
        "ip" => Some(false),
        _ => None,
    }
}

/// The user name whoAmI reports for an id (`getUserName`); `None` for a
/// scheme without a provider (the `super` id).
pub fn user_name(id: &Id) -> Option<String> {
    match id.scheme.as_str() {
        "digest" => Some(id.id.split(':').next().unwrap_or("").to_owned()),
        "ip" => Some(id.id.clone()),
        _ => None,
    }
}

/// ZooKeeper's `checkACL`: true when `auth` may do `perm` on a node with `acl`.
pub fn check_acl(acl: &[Acl], perm: i32, auth: &[Id], skip_acl: bool) -> bool {
    if skip_acl || acl.is_empty() {
        return true;
    }
    if auth.iter().any(|a| a.scheme == "super") {
        return true;
    }
    for a in acl {
        if a.perms & perm == 0 {
            continue;
        }
        if a.id.scheme == "world" && a.id.id == "anyone" {
            return true;
        }
        if provider_is_valid(&a.id.scheme, "").is_some() {
            for caller in auth {
                if caller.scheme == a.id.scheme && provider_matches(&a.id.scheme, &caller.id, &a.id.id) {
                    return true;
                }
            }
        }
    }
    false
}

/// ZooKeeper's `fixupACL`: dedupe, expand `auth`, validate ids. `None` means
/// INVALIDACL.
pub fn fixup_acl(acl: &[Acl], auth: &[Id]) -> Option<Vec<Acl>> {
    let mut uniq: Vec<&Acl> = Vec::with_capacity(acl.len());
    for a in acl {
        if !uniq.contains(&a) {
            uniq.push(a);
        }
    }
    if uniq.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(uniq.len());
    for a in uniq {
        let id = &a.id;
        if id.scheme == "world" && id.id == "anyone" {
            out.push(a.clone());
        } else if id.scheme == "auth" {
            let mut valid = false;
            for caller in auth {
                if provider_is_authenticated(&caller.scheme) == Some(true) {
                    valid = true;
                    out.push(Acl { perms: a.perms, id: caller.clone() });
                }
            }
            if !valid {
                return None;
            }
        } else {
            if provider_is_valid(&id.scheme, &id.id) != Some(true) {
                return None;
            }
            out.push(a.clone());
        }
    }
    Some(out)
}

/// getACL without ADMIN permission hides digest hashes: `user:x`.
pub fn mask_digests(acl: &[Acl]) -> Vec<Acl> {
    acl.iter()
        .map(|a| {
            if a.id.scheme == "digest" {
                let user = a.id.id.split(':').next().unwrap_or("");
                Acl { perms: a.perms, id: Id::new("digest", &format!("{user}:x")) }
            } else {
                a.clone()
            }
        })
        .collect()
}

/// Every permission, for callers that hold ADMIN.
pub const ALL: i32 = perms::ALL;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_matches_zookeeper() {
        // Value computed by ZooKeeper's DigestAuthenticationProvider for "super:test".
        assert_eq!(generate_digest("super:test"), "super:D/InIHSb7yEEbrWz8b9l71RjZJU=");
    }

    #[test]
    fn ip_masks() {
        assert!(ip_matches("127.0.0.1", "127.0.0.1"));
        assert!(ip_matches("127.0.0.1", "127.0.0.0/8"));
        assert!(!ip_matches("10.0.0.1", "127.0.0.0/8"));
        assert!(!ip_matches("127.0.0.1", "127.0.0.0/33"));
    }

    #[test]
    fn fixup_rules() {
        let world = Acl { perms: 31, id: Id::new("world", "anyone") };
        assert_eq!(fixup_acl(&[world.clone(), world.clone()], &[]), Some(vec![world.clone()]));
        assert_eq!(fixup_acl(&[], &[]), None);
        let auth = Acl { perms: 31, id: Id::new("auth", "") };
        assert_eq!(fixup_acl(std::slice::from_ref(&auth), &[Id::new("ip", "127.0.0.1")]), None);
        let d = Id::new("digest", "u:abc");
        assert_eq!(fixup_acl(&[auth], std::slice::from_ref(&d)), Some(vec![Acl { perms: 31, id: d }]));
        assert_eq!(fixup_acl(&[Acl { perms: 1, id: Id::new("digest", "u:") }], &[]), None);
        assert_eq!(fixup_acl(&[Acl { perms: 1, id: Id::new("world", "x") }], &[]), None);
    }
}
