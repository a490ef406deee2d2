//! Trains of datagrams in one system call: UDP segmentation offload (`UDP_SEGMENT`) to send,
//! generic receive offload (`UDP_GRO`) to receive (udp(7)).
//!
//! A large message leaves the engine as a train of fragments of the same size for the same
//! peer. Sent one `sendto` each, every datagram costs a system call, a pass through the stack
//! and a wake-up of the receiver. With `UDP_SEGMENT` the driver hands the kernel the whole
//! train in one buffer with the segment size; the kernel (or the device) cuts it into the very
//! same datagrams, so the wire and the peers see no difference. With `UDP_GRO` on a receiving
//! socket, a train that arrives still whole (loopback, veth) is read in one call, with its
//! segment size, and cut here.
//!
//! Both are optional: a kernel or device that refuses segmentation turns it off for that
//! socket, and the datagrams go one by one.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use bytes::{Bytes, BytesMut};
use nix::sys::socket::{
    recvmsg, sendmsg, setsockopt, sockopt, ControlMessage, ControlMessageOwned, MsgFlags, SockaddrStorage,
};
use tokio::io::Interest;
use tokio::net::UdpSocket;

use crate::links::Datagram;

/// Most segments in one train (the kernel's bound is 64 on older kernels).
pub const TRAIN_SEGMENTS_MAX: usize = 64;

/// Most bytes in one train: what fits in one UDP datagram's length.
pub const TRAIN_BYTES_MAX: usize = 65_000;

/// Where datagram reads land: a large zeroed chunk that each read's bytes are split off, so a
/// datagram reaches the engine without a copy. A chunk is freed when the last
/// datagram cut from it is dropped; a new one comes from the allocator already zeroed.
pub struct RecvBuf {
    chunk: BytesMut,
}

/// Bytes of one chunk of a [`RecvBuf`].
const RECV_CHUNK: usize = 1 << 20;

impl RecvBuf {
    /// An empty buffer; the first [`space`](Self::space) allocates.
    pub fn new() -> RecvBuf {
        RecvBuf { chunk: BytesMut::new() }
    }

    /// At least `len` initialised bytes to read into.
    pub fn space(&mut self, len: usize) -> &mut [u8] {
        if self.chunk.len() < len {
            self.chunk = BytesMut::zeroed(RECV_CHUNK.max(len));
        }
        &mut self.chunk[..len]
    }

    /// The first `len` bytes read into [`space`](Self::space), as a buffer of their own.
    pub fn take(&mut self, len: usize) -> Bytes {
        self.chunk.split_to(len).freeze()
    }
}

/// Turns on receive offload on `socket`: whole trains are read at once.
pub fn enable_gro(socket: &UdpSocket) -> io::Result<()> {
    setsockopt(socket, sockopt::UdpGroSegment, &true).map_err(io::Error::from)
}

/// One read: its length, its sender, and the segment size when it is a train of datagrams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received {
    /// Bytes read.
    pub len: usize,
    /// The sender.
    pub from: SocketAddr,
    /// With `UDP_GRO`: the size of each datagram in the train (the last may be shorter).
    pub segment: Option<usize>,
}

/// Reads one datagram, or one train of them, without waiting (`WouldBlock` when none).
pub fn try_recv(socket: &UdpSocket, buf: &mut [u8]) -> io::Result<Received> {
    socket.try_io(Interest::READABLE, || {
        let mut cmsg = nix::cmsg_space!(i32);
        let mut iov = [IoSliceMut::new(buf)];
        let fd = socket.as_raw_fd();
        let msg = recvmsg::<SockaddrStorage>(fd, &mut iov, Some(&mut cmsg), MsgFlags::MSG_DONTWAIT)
            .map_err(io::Error::from)?;
        let segment = msg.cmsgs().into_iter().flatten().find_map(|c| match c {
            ControlMessageOwned::UdpGroSegments(size) => usize::try_from(size).ok().filter(|&s| s > 0),
            _ => None,
        });
        let from = msg.address.as_ref().and_then(super::unreachable::socket_addr);
        let from =
            from.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "datagram without a sender"))?;
        Ok(Received { len: msg.bytes, from, segment })
    })
}

/// The datagrams of a read: `data` cut at every `segment` bytes, or whole (no copy).
pub fn datagrams(data: Bytes, segment: Option<usize>) -> impl Iterator<Item = Bytes> {
    let len = data.len();
    let size = segment.unwrap_or(len).max(1);
    (0..len).step_by(size).map(move |start| data.slice(start..len.min(start + size)))
}

/// Where a run of datagrams ends: the longest prefix of `items` (at least one) that may go as
/// one train — same link and peer, every datagram the size of the first but the last, which
/// may be shorter, within the segment and byte bounds.
pub fn train_len<L: PartialEq>(items: &[(L, SocketAddr, Datagram)]) -> usize {
    let Some((link, addr, first)) = items.first() else { return 0 };
    let size = first.len();
    let mut bytes = size;
    let mut n = 1;
    while n < items.len() && n < TRAIN_SEGMENTS_MAX {
        let (l, a, b) = &items[n];
        if l != link || a != addr || b.len() > size || bytes + b.len() > TRAIN_BYTES_MAX || b.is_empty() {
            break;
        }
        bytes += b.len();
        n += 1;
        if b.len() < size {
            break; // A shorter datagram ends a train.
        }
    }
    n
}

/// Sends `train` (datagrams as [`train_len`] groups them) to `addr` in one call with
/// `UDP_SEGMENT`, waiting while the socket's buffer is full. Returns the bytes sent.
pub async fn send_train(socket: &UdpSocket, train: &[&Datagram], addr: SocketAddr) -> io::Result<usize> {
    let segment = u16::try_from(train[0].len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "segment over 64 KiB"))?;
    send_vectored(socket, train, Some(segment), addr).await
}

/// Sends one datagram, head and body in one call, waiting while the socket's buffer is full.
pub async fn send_datagram(socket: &UdpSocket, datagram: &Datagram, addr: SocketAddr) -> io::Result<usize> {
    send_vectored(socket, &[datagram], None, addr).await
}

/// `datagrams` in one `sendmsg`: as a train of `segment`-byte datagrams, or (`None`) as one.
async fn send_vectored(
    socket: &UdpSocket,
    datagrams: &[&Datagram],
    segment: Option<u16>,
    addr: SocketAddr,
) -> io::Result<usize> {
    let dest = SockaddrStorage::from(addr);
    let iov: Vec<IoSlice<'_>> = datagrams
        .iter()
        .flat_map(|d| [&d.head, &d.body])
        .filter(|part| !part.is_empty())
        .map(|part| IoSlice::new(part))
        .collect();
    loop {
        socket.writable().await?;
        let sent = socket.try_io(Interest::WRITABLE, || {
            let gso;
            let cmsg: &[ControlMessage<'_>] = match &segment {
                Some(size) => {
                    gso = [ControlMessage::UdpGsoSegments(size)];
                    &gso
                }
                None => &[],
            };
            sendmsg(socket.as_raw_fd(), &iov, cmsg, MsgFlags::empty(), Some(&dest)).map_err(io::Error::from)
        });
        match sent {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            other => return other,
        }
    }
}

/// Whether a failed train says the kernel or device cannot segment (send one by one from now on).
pub fn is_unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(nix::libc::EIO | nix::libc::EINVAL | nix::libc::EOPNOTSUPP | nix::libc::ENOPROTOOPT)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(link: u8, port: u16, len: usize) -> (u8, SocketAddr, Datagram) {
        (link, SocketAddr::from(([127, 0, 0, 1], port)), Bytes::from(vec![7; len]).into())
    }

    #[test]
    fn a_train_is_one_peer_one_size_and_ends_at_a_shorter_datagram() {
        let items = [item(0, 1, 100), item(0, 1, 100), item(0, 1, 40), item(0, 1, 100)];
        assert_eq!(train_len(&items), 3);
        let items = [item(0, 1, 100), item(0, 2, 100)];
        assert_eq!(train_len(&items), 1);
        let items = [item(0, 1, 100), item(1, 1, 100)];
        assert_eq!(train_len(&items), 1);
        let items = [item(0, 1, 100), item(0, 1, 101)];
        assert_eq!(train_len(&items), 1);
        assert_eq!(train_len::<u8>(&[]), 0);
    }

    #[test]
    fn a_train_stays_within_the_segment_and_byte_bounds() {
        let many: Vec<_> = (0..200).map(|_| item(0, 1, 100)).collect();
        assert_eq!(train_len(&many), TRAIN_SEGMENTS_MAX);
        let big: Vec<_> = (0..60).map(|_| item(0, 1, 1400)).collect();
        assert_eq!(train_len(&big), TRAIN_BYTES_MAX / 1400);
    }

    #[test]
    fn a_recv_buf_hands_out_each_read_and_starts_a_chunk_when_one_is_used_up() {
        let mut rb = RecvBuf::new();
        for round in 0..40u8 {
            let space = rb.space(65_536);
            assert_eq!(space.len(), 65_536);
            space[..30_000].fill(round);
            let got = rb.take(30_000);
            assert_eq!(got.len(), 30_000);
            assert!(got.iter().all(|&b| b == round), "round {round}");
        }
    }

    #[test]
    fn datagrams_are_cut_at_the_segment_size() {
        let data = Bytes::from((0..10).collect::<Vec<u8>>());
        let cut: Vec<Bytes> = datagrams(data.clone(), Some(4)).collect();
        assert_eq!(cut, vec![data.slice(0..4), data.slice(4..8), data.slice(8..10)]);
        assert_eq!(datagrams(data, None).count(), 1);
    }

    #[tokio::test]
    async fn a_train_sent_with_segmentation_arrives_as_the_same_datagrams() {
        let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let gro = enable_gro(&rx).is_ok();
        let payloads: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; if i == 4 { 300 } else { 1000 }]).collect();
        // Each datagram in two parts, cut at another place each time: the kernel joins them.
        let parts: Vec<Datagram> = payloads
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let p = Bytes::from(p.clone());
                Datagram { head: p.slice(..i * 7), body: p.slice(i * 7..) }
            })
            .collect();
        let train: Vec<&Datagram> = parts.iter().collect();
        let sent = send_train(&tx, &train, rx.local_addr().unwrap()).await.unwrap();
        assert_eq!(sent, 4300);
        let one = Datagram { head: Bytes::from_static(b"he"), body: Bytes::from_static(b"llo") };
        assert_eq!(send_datagram(&tx, &one, rx.local_addr().unwrap()).await.unwrap(), 5);
        let mut got: Vec<Vec<u8>> = Vec::new();
        let mut buf = vec![0u8; 65_536];
        while got.len() < payloads.len() + 1 {
            rx.readable().await.unwrap();
            let Ok(r) = try_recv(&rx, &mut buf) else { continue };
            assert_eq!(r.from, tx.local_addr().unwrap());
            if !gro {
                assert_eq!(r.segment, None);
            }
            let data = Bytes::copy_from_slice(&buf[..r.len]);
            got.extend(datagrams(data, r.segment).map(|d| d.to_vec()));
        }
        let mut want = payloads.clone();
        want.push(b"hello".to_vec());
        assert_eq!(got, want);
    }
}
