//! The daemon's side of a local API connection never panics on any bytes a client sends:
//! each frame is a request, a handshake, or a typed error that closes the session.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut session = ipc::ServerSession::new(ipc::SessionConfig::new(1, 1 << 20));
    // Split the input at an arbitrary point, as reads from a socket would.
    let cut = data.first().map_or(0, |&b| usize::from(b)).min(data.len());
    for chunk in [&data[..cut], &data[cut..]] {
        session.handle_bytes(chunk);
        while let Ok(Some(_)) = session.poll_input() {}
        let _ = session.poll_transmit();
    }
});
