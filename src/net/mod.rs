//! The client listener: accepts TCP connections, applies `maxClientCnxns`
//! per client address, and hands each connection to its own task
//! ([`crate::session::connection`]).
//!
//! - Inputs: the listening socket.
//! - Outputs: one task per accepted connection.
//! - Invariants: a refused or failing connection never affects the others;
//!   the per-address count is released when the connection task ends.

pub mod codec;

use crate::Shared;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;

/// Live connections per client address.
#[derive(Default)]
pub struct ConnectionCounts(Mutex<HashMap<IpAddr, usize>>);

struct CountGuard(Arc<Shared>, IpAddr);

impl Drop for CountGuard {
    fn drop(&mut self) {
        let mut m = self.0.conn_counts.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = m.get_mut(&self.1) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.1);
            }
        }
    }
}

pub async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let (stream, addr) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // Out of descriptors and similar: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let ip = addr.ip();
        {
            let max = shared.cfg.max_client_cnxns;
            let mut m = shared.conn_counts.0.lock().unwrap_or_else(|e| e.into_inner());
            let n = m.entry(ip).or_insert(0);
            if max > 0 && *n >= max {
                tracing::warn!("Too many connections from {ip} - max is {max}");
                continue;
            }
            *n += 1;
        }
        let guard = CountGuard(shared.clone(), ip);
        let conn_id = shared.next_conn_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let shared = shared.clone();
        tokio::spawn(async move {
            let _guard = guard;
            crate::session::connection::serve(stream, addr, conn_id, shared).await;
        });
    }
}
