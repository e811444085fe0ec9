//! Protobuf field writers shared by shoal's wire formats (bitswap, sync,
//! identify, logs, snapshots); reading goes through the bounded
//! [`crate::dagpb::Reader`].

use crate::dagpb::{DagPbError, Reader};
use crate::varint;

pub fn varint_field(out: &mut Vec<u8>, field: u64, v: u64) {
    varint::encode(field << 3, out);
    varint::encode(v, out);
}

pub fn bytes_field(out: &mut Vec<u8>, field: u64, data: &[u8]) {
    varint::encode((field << 3) | 2, out);
    varint::encode(data.len() as u64, out);
    out.extend_from_slice(data);
}

/// Skips a field of an unknown number (forward compatibility); other wire
/// types are refused.
pub fn skip(r: &mut Reader<'_>, field: u64, wire: u64) -> Result<(), DagPbError> {
    match wire {
        0 => r.varint().map(drop),
        2 => r.bytes().map(drop),
        _ => Err(DagPbError::UnexpectedField {
            field,
            wire,
            at: r.pos(),
        }),
    }
}
