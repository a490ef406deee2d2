//! Bodies behind a correct frame and crc, so the fuzzer reaches prost and `validate` instead of
//! stopping at the checksum. Input: `[kind][body...]`.
//!
//! Checks that decoding never panics and that whatever decodes re-encodes to a packet that
//! decodes to itself (the encoder and the validator agree).
#![no_main]

use bytes::{BufMut, BytesMut};
use libfuzzer_sys::fuzz_target;
use totem::wire::{Packet, FRAME_OVERHEAD, WIRE_VERSION};

fuzz_target!(|data: &[u8]| {
    let Some((&kind, body)) = data.split_first() else {
        return;
    };
    let mut frame = BytesMut::with_capacity(body.len() + FRAME_OVERHEAD);
    frame.put_u8(WIRE_VERSION);
    frame.put_u8(kind);
    frame.put_slice(body);
    let crc = crc32fast::hash(&frame);
    frame.put_u32_le(crc);
    if let Ok(packet) = Packet::decode(frame.freeze()) {
        let again = Packet::decode(packet.encode());
        assert_eq!(
            again.as_ref(),
            Ok(&packet),
            "re-encoded packet does not decode to itself"
        );
    }
});
