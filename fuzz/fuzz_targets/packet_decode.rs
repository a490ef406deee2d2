//! Raw datagrams into the packet decoder: it must never panic, whatever arrives on the socket.
//!
//! Almost every input fails the crc here; `packet_framed` reaches the body decoders.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use totem::wire::Packet;

fuzz_target!(|data: &[u8]| {
    let _ = Packet::decode(Bytes::copy_from_slice(data));
});
