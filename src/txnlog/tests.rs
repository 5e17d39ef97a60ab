use super::*;

fn payload(zxid: i64, size: usize) -> Vec<u8> {
    let mut p = zxid.to_be_bytes().to_vec();
    p.extend((0..size).map(|i| (i as u8) ^ (zxid as u8)));
    p
}

fn small(dir: &Path) -> LogConfig {
    LogConfig { dir: dir.to_path_buf(), prealloc_bytes: 4096, segment_bytes: 8192 }
}

fn write(dir: &Path, from: i64, to: i64) {
    let (mut log, _) = TxnLog::open(small(dir), from - 1).unwrap();
    for z in from..=to {
        log.append(z, &payload(z, 100)).unwrap();
        if z % 7 == 0 {
            log.sync().unwrap();
        }
    }
    log.sync().unwrap();
}

#[test]
fn append_sync_reopen_and_roll() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), 1, 300);
    let (log, entries) = TxnLog::open(small(d.path()), 0).unwrap();
    assert_eq!(entries.len(), 300);
    assert!(entries.iter().enumerate().all(|(i, e)| e.zxid == i as i64 + 1 && e.payload == payload(e.zxid, 100)));
    assert!(log.segment_paths().len() > 2, "small segments roll");
    assert_eq!(log.last_zxid(), 300);
    // From a snapshot at 250, only later entries come back.
    let (_, entries) = TxnLog::open(small(d.path()), 250).unwrap();
    assert_eq!(entries.first().map(|e| e.zxid), Some(251));
    assert_eq!(entries.len(), 50);
    // Appending after reopen continues the sequence.
    let (mut log, _) = TxnLog::open(small(d.path()), 0).unwrap();
    log.append(301, &payload(301, 10)).unwrap();
    log.sync().unwrap();
    let (_, entries) = TxnLog::open(small(d.path()), 0).unwrap();
    assert_eq!(entries.last().map(|e| e.zxid), Some(301));
}

fn last_segment(d: &Path) -> PathBuf {
    let (log, _) = TxnLog::open(small(d), 0).unwrap();
    log.segment_paths().pop().unwrap()
}

#[test]
fn torn_tail_is_truncated() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), 1, 20);
    let seg = last_segment(d.path());
    let bytes = fs::read(&seg).unwrap();
    let end = bytes.iter().rposition(|b| *b != 0).unwrap() + 1;
    // A half-written next record: a length, a checksum and part of the body.
    let f = OpenOptions::new().write(true).open(&seg).unwrap();
    let mut torn = (108u32).to_be_bytes().to_vec();
    torn.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
    torn.extend_from_slice(&21i64.to_be_bytes());
    torn.extend_from_slice(&[7; 30]);
    f.write_all_at(&torn, end as u64).unwrap();
    let (mut log, entries) = TxnLog::open(small(d.path()), 0).unwrap();
    assert_eq!(entries.len(), 20);
    // The garbage is gone: a new entry is written where the torn one was.
    log.append(21, &payload(21, 5)).unwrap();
    log.sync().unwrap();
    let (_, entries) = TxnLog::open(small(d.path()), 0).unwrap();
    assert_eq!(entries.len(), 21);
}

#[test]
fn garbage_tail_is_truncated() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), 1, 10);
    let seg = last_segment(d.path());
    let bytes = fs::read(&seg).unwrap();
    let end = bytes.iter().rposition(|b| *b != 0).unwrap() + 1;
    let f = OpenOptions::new().write(true).open(&seg).unwrap();
    f.write_all_at(&[0x55; 333], end as u64).unwrap();
    let (_, entries) = TxnLog::open(small(d.path()), 0).unwrap();
    assert_eq!(entries.len(), 10);
}

#[test]
fn corruption_before_the_tail_is_refused() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), 1, 20);
    let seg = last_segment(d.path());
    let dump = read_segment(&seg).unwrap();
    let (first, records) = (dump.first_zxid, dump.records);
    assert!(records.len() > 3);
    // Flip a byte inside the second record of the segment.
    let off = HEADER_LEN as usize + RECORD_HEADER_LEN + records[0].payload.len() + RECORD_HEADER_LEN + 10;
    let f = OpenOptions::new().read(true).write(true).open(&seg).unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, off as u64).unwrap();
    f.write_all_at(&[b[0] ^ 0xff], off as u64).unwrap();
    let err = TxnLog::open(small(d.path()), 0).err().expect("refused");
    let msg = err.to_string();
    assert!(matches!(err, LogError::Corrupt { .. }), "{msg}");
    assert!(msg.contains(&seg.display().to_string()) && msg.contains("offset"), "{msg}");
    assert!(msg.contains(&format!("{:x}", first + 1)), "{msg}");
}

#[test]
fn corruption_in_an_older_segment_is_refused() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), 1, 300);
    let (log, _) = TxnLog::open(small(d.path()), 0).unwrap();
    let first_seg = log.segment_paths()[0].clone();
    let f = OpenOptions::new().read(true).write(true).open(&first_seg).unwrap();
    f.write_all_at(&[0xff; 4], HEADER_LEN + 4).unwrap();
    assert!(matches!(TxnLog::open(small(d.path()), 0), Err(LogError::Corrupt { .. })));
}

#[test]
fn purge_keeps_what_a_snapshot_does_not_cover() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), 1, 300);
    let (mut log, _) = TxnLog::open(small(d.path()), 0).unwrap();
    let before = log.segment_paths().len();
    let removed = log.purge_before(200).unwrap();
    assert!(removed > 0 && removed < before);
    let (_, entries) = TxnLog::open(small(d.path()), 200).unwrap();
    assert_eq!(entries.first().map(|e| e.zxid), Some(201));
    assert_eq!(entries.len(), 100);
}

#[test]
fn snapshot_ahead_of_the_log_starts_a_new_segment() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), 1, 10);
    let (mut log, entries) = TxnLog::open(small(d.path()), 50).unwrap();
    assert!(entries.is_empty());
    log.append(51, &payload(51, 3)).unwrap();
    log.sync().unwrap();
    let (_, entries) = TxnLog::open(small(d.path()), 50).unwrap();
    assert_eq!(entries.iter().map(|e| e.zxid).collect::<Vec<_>>(), vec![51]);
}

#[test]
fn zeroed_record_before_valid_ones_is_refused() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), 1, 20);
    let seg = last_segment(d.path());
    let dump = read_segment(&seg).unwrap();
    let off = HEADER_LEN as usize + RECORD_HEADER_LEN + dump.records[0].payload.len();
    let f = OpenOptions::new().write(true).open(&seg).unwrap();
    f.write_all_at(&[0u8; 8], off as u64).unwrap();
    assert!(matches!(TxnLog::open(small(d.path()), 0), Err(LogError::Corrupt { .. })));
}

#[test]
fn segment_cut_short_at_creation_is_dropped() {
    for content in [&b""[..], &b"FK"[..]] {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), 1, 5);
        fs::write(d.path().join(segment_name(6)), content).unwrap();
        let (mut log, entries) = TxnLog::open(small(d.path()), 0).unwrap();
        assert_eq!(entries.len(), 5);
        log.append(6, &payload(6, 3)).unwrap();
        log.sync().unwrap();
        assert_eq!(TxnLog::open(small(d.path()), 0).unwrap().1.len(), 6);
    }
}

#[test]
fn log_that_does_not_reach_the_snapshot_is_refused() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), 1, 300);
    let (mut log, _) = TxnLog::open(small(d.path()), 0).unwrap();
    log.purge_before(200).unwrap();
    // The snapshot at 200 is lost: starting from nothing must not skip ahead.
    assert!(matches!(TxnLog::open(small(d.path()), 0), Err(LogError::Gap { .. })));
}

#[test]
fn closed_segments_keep_no_preallocated_tail() {
    let d = tempfile::tempdir().unwrap();
    let cfg = LogConfig { dir: d.path().to_path_buf(), prealloc_bytes: 64 << 10, segment_bytes: 64 << 10 };
    let (mut log, _) = TxnLog::open(cfg.clone(), 0).unwrap();
    for z in 1..=10 {
        log.append(z, &payload(z, 100)).unwrap();
    }
    log.sync().unwrap();
    log.roll_at_next_append();
    for z in 11..=20 {
        log.append(z, &payload(z, 100)).unwrap();
    }
    log.sync().unwrap();
    let paths = log.segment_paths();
    assert_eq!(paths.len(), 2);
    let closed = fs::metadata(&paths[0]).unwrap().len();
    assert_eq!(closed, HEADER_LEN + 10 * (RECORD_HEADER_LEN as u64 + 108), "closed segment cut at its last record");
    assert_eq!(fs::metadata(&paths[1]).unwrap().len(), 64 << 10, "the open segment stays preallocated");
    drop(log);
    // A closed segment that still has its preallocated tail (an older
    // version, or a crash before the cut) is cut when the log opens.
    OpenOptions::new().write(true).open(&paths[0]).unwrap().set_len(64 << 10).unwrap();
    let (mut log, entries) = TxnLog::open(cfg.clone(), 0).unwrap();
    assert_eq!(entries.len(), 20);
    assert_eq!(fs::metadata(&paths[0]).unwrap().len(), closed);
    // Cutting back into a trimmed segment and appending there still works.
    log.truncate_from(15).unwrap();
    log.truncate_from(8).unwrap();
    for z in 8..=12 {
        log.append(z, &payload(z, 50)).unwrap();
    }
    log.sync().unwrap();
    drop(log);
    let (_, entries) = TxnLog::open(cfg, 0).unwrap();
    assert_eq!(entries.iter().map(|e| e.zxid).collect::<Vec<_>>(), (1..=12).collect::<Vec<_>>());
    assert_eq!(entries[10].payload, payload(11, 50));
}
