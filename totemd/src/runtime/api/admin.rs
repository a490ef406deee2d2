//! The driver's operator requests and the state they read: the metrics text (for `totemctl
//! metrics` and the HTTP listener), a clean shutdown, the live confdb keys, and the `uidgid`
//! grants a reload changes.
//!
//! These are methods of the driver because they read all of it (node, links, counters, clients);
//! they make no protocol decision.

use cpg::service::ClientId;
use ipc::{MetricsReply, RequestBody, Response, ResponseResult};

use super::{collect, Access};
use crate::config::UidGid;
use crate::runtime::{unix_seconds, Driver};

impl Driver<'_> {
    /// Answers `Metrics` and `Shutdown`; `false` when `body` is neither.
    pub(in crate::runtime) fn admin_request(
        &mut self,
        id: ClientId,
        request_id: u64,
        body: &RequestBody,
    ) -> bool {
        let response = match body {
            RequestBody::Metrics(_) => {
                Response::new(request_id, ResponseResult::Metrics(MetricsReply { text: self.metrics_text() }))
            }
            RequestBody::Shutdown(_) => {
                let pid = self.ipc.clients.get(&id).map_or(0, |c| c.pid);
                tracing::info!(client = id.0, pid, "shutdown requested over the local API");
                self.shutdown_requested = true;
                Response::ok(request_id)
            }
            _ => return false,
        };
        if let Some(client) = self.ipc.clients.get_mut(&id) {
            client.session.send_response(response);
        }
        true
    }

    /// Before a confdb read: the counters and the live keys brought up to date.
    pub(in crate::runtime) fn refresh_confdb(&mut self) {
        self.confdb.refresh_counters(self.node.stats(), &self.stats);
        self.sync_live();
    }

    /// After a flush: the live keys, if something they show may have changed.
    pub(in crate::runtime) fn refresh_live_if_dirty(&mut self) {
        if self.confdb.live_dirty() {
            self.sync_live();
        }
    }

    fn sync_live(&mut self) {
        let links = self.links.status();
        let keys = crate::live::live_keys(&self.node, &links, self.clock.now(), u64::from(unix_seconds()));
        self.confdb.sync_live(keys);
    }

    /// A reload changed the `uidgid` section: new grants for new connections and confdb writes.
    pub(in crate::runtime) fn apply_uidgid(&mut self, entries: &[UidGid]) {
        let access = Access::from_config(entries);
        tracing::info!(
            "uidgid: granted users {:?}, groups {:?} (new connections)",
            access.uids(),
            access.gids()
        );
        self.confdb.set_access(access.uids(), access.gids());
        self.ipc.set_access(access);
    }

    /// Every counter and gauge in the Prometheus text format.
    pub(in crate::runtime) fn metrics_text(&self) -> String {
        let links = self.links.status();
        let link_stats = self.links.stats();
        let clients = self.ipc.clients.len();
        collect::metrics(&self.node, &self.stats, &links, link_stats, clients, self.clock.elapsed())
    }
}
