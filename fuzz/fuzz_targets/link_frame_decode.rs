//! The link layer's frame decoder never panics on any datagram.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = totemd::links::Frame::decode(bytes::Bytes::copy_from_slice(data));
});
