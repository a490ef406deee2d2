//! CPG client helpers shared by the tests that drive daemons through the `cpg` crate.

use std::path::Path;
use std::time::Duration;

use cpg::client::Cpg;
use cpg::GroupName;

/// A group name the tests know to be valid.
pub fn group(name: &str) -> GroupName {
    GroupName::try_from(name).unwrap()
}

/// The runtime the test clients run on.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// Connects to the daemon at `socket`, retrying for up to 5 s while its socket is not there.
pub async fn connect(socket: &Path) -> Cpg {
    // The daemon creates its socket right after it starts; the ring is formed by now.
    for _ in 0..100 {
        if let Ok(cpg) = Cpg::connect(socket).await {
            return cpg;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("cannot connect to {}", socket.display());
}
