//! Writing queued chunks to a stream: both ends of a connection send what they queued in
//! vectored writes, so frames (and the long messages inside them) are not joined first.

use std::io;

use bytes::{Buf, Bytes};
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Chunks taken for one vectored write (the kernel's IOV_MAX is 1024).
pub const WRITE_CHUNKS_MAX: usize = 64;

/// Writes `first` and what `more` yields at once (up to [`WRITE_CHUNKS_MAX`] chunks in all) in
/// vectored writes: one system call for a burst, not one each, and no copy. Returns the bytes
/// written; `chunks` is scratch space, empty on return.
pub async fn write_batch<W: AsyncWrite + Unpin>(
    write: &mut W,
    chunks: &mut Vec<Bytes>,
    first: Bytes,
    mut more: impl FnMut() -> Option<Bytes>,
) -> io::Result<usize> {
    chunks.push(first);
    while chunks.len() < WRITE_CHUNKS_MAX {
        let Some(next) = more() else { break };
        chunks.push(next);
    }
    let len = chunks.iter().map(Bytes::len).sum();
    write_all_vectored(write, chunks).await?;
    Ok(len)
}

/// Writes every byte of `chunks`, in order, with vectored writes, then empties it.
pub async fn write_all_vectored<W: AsyncWrite + Unpin>(
    write: &mut W,
    chunks: &mut Vec<Bytes>,
) -> io::Result<()> {
    let mut first = 0;
    while first < chunks.len() {
        let slices: Vec<io::IoSlice<'_>> = chunks[first..].iter().map(|c| io::IoSlice::new(c)).collect();
        let mut n = write.write_vectored(&slices).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        while n > 0 {
            let len = chunks[first].len();
            if n >= len {
                n -= len;
                first += 1;
            } else {
                chunks[first].advance(n);
                n = 0;
            }
        }
    }
    chunks.clear();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_chunk_arrives_in_order_through_short_writes() {
        // A pipe far smaller than what is written: the writes come back short, mid-chunk.
        let (mut a, mut b) = tokio::io::duplex(1000);
        let chunks: Vec<Bytes> = (0..50u8).map(|i| Bytes::from(vec![i; 1 + 97 * i as usize])).collect();
        let expected: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut b, &mut got).await.map(|_| got)
        });
        let mut queue = chunks;
        write_all_vectored(&mut a, &mut queue).await.unwrap();
        assert!(queue.is_empty());
        drop(a);
        assert_eq!(reader.await.unwrap().unwrap(), expected);
    }
}
