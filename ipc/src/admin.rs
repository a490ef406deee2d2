//! The operator's requests that are not about one service: the metrics in the Prometheus text
//! format, and a clean shutdown (`corosync-cfgtool -H`).

use prost::Message;

/// Ask for the runtime counters and gauges in the Prometheus text exposition format.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct MetricsRequest {}

/// The metrics, exactly as totemd's HTTP listener serves them at `/metrics`.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct MetricsReply {
    /// Prometheus text exposition format 0.0.4: `# HELP` and `# TYPE` lines, then samples.
    #[prost(string, tag = "1")]
    pub text: String,
}

/// Ask the daemon to leave the ring cleanly and exit 0 (`corosync-cfgtool -H`). It answers
/// `Ok` first, then stops; its peers see a clean leave, not a failure.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct ShutdownRequest {}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use prost::Message;

    use super::*;
    use crate::{Request, RequestBody, Response, ResponseResult};

    proptest! {
        #[test]
        fn admin_requests_and_replies_round_trip(id in any::<u64>(), text in ".{0,200}", shutdown in any::<bool>()) {
            let body = if shutdown {
                RequestBody::Shutdown(ShutdownRequest {})
            } else {
                RequestBody::Metrics(MetricsRequest {})
            };
            let request = Request { id, body: Some(body) };
            prop_assert_eq!(Request::decode(request.encode_to_vec().as_slice()).unwrap(), request);
            let response = Response::new(id, ResponseResult::Metrics(MetricsReply { text }));
            prop_assert_eq!(Response::decode(response.encode_to_vec().as_slice()).unwrap(), response);
        }
    }
}
