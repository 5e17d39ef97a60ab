//! Framing: every ZooKeeper packet is a 4-byte big-endian length and that
//! many bytes. A length below zero or above `jute.maxbuffer` closes the
//! connection, as ZooKeeper does ("Len error"): nothing of such a frame is
//! buffered.

use bytes::{Buf, BytesMut};
use tokio_util::codec::Decoder;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame length {len} outside 0..={max} (jute.maxbuffer)")]
    Length { len: i64, max: usize },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

pub struct FrameCodec {
    max: usize,
}

impl FrameCodec {
    pub fn new(max: usize) -> Self {
        FrameCodec { max }
    }
}

impl Decoder for FrameCodec {
    type Item = BytesMut;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, FrameError> {
        if src.len() < 4 {
            return Ok(None);
        }
        let len = i32::from_be_bytes([src[0], src[1], src[2], src[3]]);
        if len < 0 || len as usize > self.max {
            return Err(FrameError::Length { len: len as i64, max: self.max });
        }
        let len = len as usize;
        if src.len() < 4 + len {
            src.reserve(4 + len - src.len());
            return Ok(None);
        }
        src.advance(4);
        Ok(Some(src.split_to(len)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_frames_and_refuses_oversized() {
        let mut c = FrameCodec::new(8);
        let mut b = BytesMut::from(&[0, 0, 0, 2, 7, 8, 0, 0][..]);
        assert_eq!(c.decode(&mut b).unwrap().unwrap().as_ref(), &[7, 8]);
        assert!(c.decode(&mut b).unwrap().is_none());
        let mut b = BytesMut::from(&[0, 0, 0, 9][..]);
        assert!(c.decode(&mut b).is_err());
        let mut b = BytesMut::from(&[0xff, 0xff, 0xff, 0xfe][..]);
        assert!(c.decode(&mut b).is_err());
    }
}
