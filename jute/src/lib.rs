//! Jute, ZooKeeper's binary record format.
//!
//! Role: turn bytes into typed ZooKeeper records and back, for the client
//! protocol, the transaction records and (later) the on-disk formats.
//!
//! - Inputs: byte slices (one frame body, without its 4-byte length prefix).
//! - Outputs: records ([`proto`], [`data`], [`txn`]) and encoded bytes.
//! - Invariants:
//!   - every record is declared once, with [`jute_records!`]; the encoder and
//!     the decoder are generated from the same field list, so they cannot
//!     drift apart;
//!   - decoding is bounded by the input: a length prefix larger than what is
//!     left is an error before any allocation, so no input can make the
//!     decoder allocate more than the input's size or panic;
//!   - a buffer or string of length -1 is *null*, distinct from empty. Fields
//!     whose null-ness is visible to clients (znode data) are `Option<..>`;
//!     elsewhere null reads as empty, as ZooKeeper's own server treats it.
//!
//! Encoding is big-endian, as Java's `DataOutput`: `int` 4 bytes, `long` 8,
//! `boolean` 1 byte, `buffer` and `ustring` a 4-byte length then the bytes,
//! `vector` a 4-byte count then the elements.

mod codec;
pub mod data;
pub mod proto;
pub mod txn;

pub use codec::{DecodeError, Jute, Reader, Sample, SampleRng, VectorElement};

/// Declares Jute records: for each, a struct with public fields and a
/// [`Jute`] implementation that writes and reads the fields in declaration
/// order. Every record also gets a [`Sample`] implementation so the property
/// tests can round-trip it.
#[macro_export]
macro_rules! jute_records {
    ($(
        $(#[$meta:meta])*
        $name:ident { $($(#[$fmeta:meta])* $field:ident : $ty:ty),* $(,)? }
    )*) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
        pub struct $name { $($(#[$fmeta])* pub $field: $ty),* }

        impl $crate::Jute for $name {
            #[allow(unused_variables)]
            fn write_to(&self, out: &mut Vec<u8>) {
                $($crate::Jute::write_to(&self.$field, out);)*
            }
            #[allow(unused_variables)]
            fn read_from(r: &mut $crate::Reader<'_>) -> Result<Self, $crate::DecodeError> {
                Ok($name { $($field: <$ty as $crate::Jute>::read_from(r)?),* })
            }
        }

        impl $crate::VectorElement for $name {}

        impl $crate::Sample for $name {
            #[allow(unused_variables)]
            fn sample(rng: &mut $crate::SampleRng) -> Self {
                $name { $($field: <$ty as $crate::Sample>::sample(rng)),* }
            }
        }
    )*};
}

#[cfg(test)]
mod tests;
