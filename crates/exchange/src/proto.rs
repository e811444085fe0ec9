//! The few protobuf writing helpers the wire formats here share (reading
//! goes through `shoal_ipld::dagpb::Reader`, which is bounded).

use shoal_ipld::dagpb::{DagPbError, Reader};
use shoal_ipld::varint;

pub(crate) fn varint_field(out: &mut Vec<u8>, field: u64, v: u64) {
    varint::encode(field << 3, out);
    varint::encode(v, out);
}

pub(crate) fn bytes_field(out: &mut Vec<u8>, field: u64, data: &[u8]) {
    varint::encode((field << 3) | 2, out);
    varint::encode(data.len() as u64, out);
    out.extend_from_slice(data);
}

/// Skips a field of an unknown number (forward compatibility); other wire
/// types are refused.
pub(crate) fn skip(r: &mut Reader<'_>, field: u64, wire: u64) -> Result<(), DagPbError> {
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
