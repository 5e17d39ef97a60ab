//! What the operating system tells about this process and its files: file
//! descriptors, memory, CPU time, directory sizes, the newest snapshot, the
//! log thread; and Java's `Date.toString` for the `dump` word.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub fn open_fds() -> u64 {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count() as u64).unwrap_or(0)
}

pub fn max_fds() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let v = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if v > 0 {
        v as u64
    } else {
        4096
    }
}

/// (virtual, resident) memory of this process in bytes.
pub fn memory() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let mut it = s.split_whitespace().map(|v| v.parse::<u64>().unwrap_or(0));
    let virt = it.next().unwrap_or(0);
    let rss = it.next().unwrap_or(0);
    let ps = page_size();
    (virt * ps, rss * ps)
}

/// User + system CPU time of this process, in seconds.
pub fn cpu_seconds() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the whole line.
    let rest = s.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = if hz > 0 { hz as f64 } else { 100.0 };
    (ticks(11) + ticks(12)) as f64 / hz
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_owned()).unwrap_or_default()
}

pub fn os_version() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|s| s.trim().to_owned()).unwrap_or_default()
}

pub fn os_arch() -> &'static str {
    if cfg!(target_arch = "x86_64") {
        "amd64"
    } else {
        std::env::consts::ARCH
    }
}

/// Bytes of the regular files under `dir`, recursively (ZooKeeper's
/// `getDirSize`); symbolic links are not followed; bounded in depth.
pub fn dir_size(dir: &Path) -> u64 {
    fn walk(dir: &Path, depth: usize) -> u64 {
        if depth > 8 {
            return 0;
        }
        let Ok(rd) = std::fs::read_dir(dir) else { return 0 };
        let mut total = 0;
        for e in rd.flatten() {
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                total += walk(&e.path(), depth + 1);
            } else if ft.is_file() {
                total += e.metadata().map(|m| m.len()).unwrap_or(0);
            }
        }
        total
    }
    walk(dir, 0)
}

/// The newest of our snapshots in `dir` (`snapshot.<16 hex zxid>`): its zxid
/// and its modification time in seconds since the epoch.
pub fn last_snapshot(dir: &Path) -> Option<(i64, i64)> {
    let rd = std::fs::read_dir(dir).ok()?;
    let mut best: Option<(i64, std::path::PathBuf)> = None;
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(hex) = name.strip_prefix("snapshot.") else { continue };
        let Ok(zxid) = i64::from_str_radix(hex, 16) else { continue };
        let newer = match &best {
            Some((z, _)) => zxid > *z,
            None => true,
        };
        if newer {
            best = Some((zxid, e.path()));
        }
    }
    let (zxid, path) = best?;
    let mtime = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(-1, |d| d.as_secs() as i64);
    Some((zxid, mtime))
}

/// Whether a thread of this process has this name (`/proc/self/task/*/comm`);
/// `None` when that cannot be read.
pub fn thread_alive(name: &str) -> Option<bool> {
    let rd = std::fs::read_dir("/proc/self/task").ok()?;
    let mut seen_any = false;
    for e in rd.flatten() {
        seen_any = true;
        if let Ok(comm) = std::fs::read_to_string(e.path().join("comm")) {
            if comm.trim_end() == name {
                return Some(true);
            }
        }
    }
    seen_any.then_some(false)
}

/// Seconds since the epoch at which this process started.
pub fn process_start_seconds() -> f64 {
    static START: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *START.get_or_init(|| {
        // The process start is the boot time plus field 22 (in ticks).
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let start_ticks = rest.split_whitespace().nth(19).and_then(|v| v.parse::<u64>().ok());
        let btime = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| s.lines().find_map(|l| l.strip_prefix("btime ").and_then(|v| v.trim().parse::<u64>().ok())));
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        match (start_ticks, btime, hz > 0) {
            (Some(t), Some(b), true) => b as f64 + t as f64 / hz as f64,
            _ => SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64()),
        }
    })
}

/// Java's `Date.toString()` in UTC: `Sun Nov 22 03:20:51 UTC 2026`.
pub fn java_date(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs() as i64;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    const WD: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MON: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    format!(
        "{} {} {:02} {:02}:{:02}:{:02} UTC {}",
        WD[days.rem_euclid(7) as usize],
        MON[(m - 1) as usize],
        d,
        sod / 3600,
        (sod / 60) % 60,
        sod % 60,
        y
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_dates() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_317_651);
        assert_eq!(java_date(t), "Sun Nov 22 03:20:51 UTC 2026");
        assert_eq!(java_date(UNIX_EPOCH), "Thu Jan 01 00:00:00 UTC 1970");
        assert_eq!(java_date(UNIX_EPOCH + Duration::from_secs(951_782_400)), "Tue Feb 29 00:00:00 UTC 2000");
    }

    #[test]
    fn process_info() {
        assert!(open_fds() > 0);
        assert!(memory().1 > 0);
        assert!(process_start_seconds() > 1.0e9);
    }
}
