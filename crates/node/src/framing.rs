//! uvarint-length-prefixed messages on a stream (bitswap and sync both
//! frame this way). Reads are bounded by a caller-given limit.

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use std::io;

/// Reads one message of at most `max` bytes; `None` at a clean end.
pub async fn read<R: AsyncRead + Unpin>(r: &mut R, max: usize) -> io::Result<Option<Vec<u8>>> {
    let mut len: u64 = 0;
    for i in 0..10 {
        let mut b = [0u8; 1];
        if r.read(&mut b).await? == 0 {
            return if i == 0 {
                Ok(None)
            } else {
                Err(io::ErrorKind::UnexpectedEof.into())
            };
        }
        len |= u64::from(b[0] & 0x7f) << (7 * i);
        if b[0] & 0x80 == 0 {
            if len > max as u64 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("message of {len} bytes is over the {max}-byte limit"),
                ));
            }
            let mut buf = vec![0u8; len as usize];
            r.read_exact(&mut buf).await?;
            return Ok(Some(buf));
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        "length varint too long",
    ))
}

/// Writes one message (without flushing).
pub async fn write<W: AsyncWrite + Unpin>(w: &mut W, bytes: &[u8]) -> io::Result<()> {
    let mut head = Vec::with_capacity(10);
    shoal_ipld::varint::encode(bytes.len() as u64, &mut head);
    w.write_all(&head).await?;
    w.write_all(bytes).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_limits() {
        futures::executor::block_on(async {
            let mut buf = Vec::new();
            write(&mut buf, b"hello").await.unwrap();
            write(&mut buf, &[7u8; 300]).await.unwrap();
            let mut r = &buf[..];
            assert_eq!(read(&mut r, 1000).await.unwrap().unwrap(), b"hello");
            assert_eq!(read(&mut r, 1000).await.unwrap().unwrap().len(), 300);
            assert!(read(&mut r, 1000).await.unwrap().is_none());
            let mut r = &buf[6..];
            assert!(read(&mut r, 100).await.is_err(), "over the limit");
            let mut r = &buf[..3];
            assert!(read(&mut r, 100).await.is_err(), "truncated");
            let mut r: &[u8] = &[0xff; 11];
            assert!(read(&mut r, usize::MAX).await.is_err(), "endless varint");
        });
    }
}
