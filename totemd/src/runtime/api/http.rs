//! The opt-in metrics listener (`system { metrics_listen: 127.0.0.1:9405 }`): a minimal
//! HTTP/1.1 responder for Prometheus' scrapes. `GET /metrics` (or `HEAD`) answers the same
//! text as `totemctl metrics`; any other path is 404, any other method 405, anything that is
//! not a request line 400. One request per connection (`Connection: close`).
//!
//! Bounds: a request head of at most [`REQUEST_MAX`] bytes, read within [`READ_TIMEOUT`], and
//! at most [`CONNECTIONS_MAX`] connections at once (more are closed at once). The text comes
//! from the driver loop over the readers' channel, so a scrape never touches the node from
//! another task.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

use super::{ClientInput, IpcSetupError};

/// Bytes of request head read at most.
pub const REQUEST_MAX: usize = 8 << 10;
/// How long a client has to send its request head.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once.
pub const CONNECTIONS_MAX: usize = 16;

/// Binds `addr` and serves it on a task of its own until the daemon stops.
pub(in crate::runtime) fn spawn(
    addr: SocketAddr,
    loop_tx: mpsc::Sender<ClientInput>,
) -> Result<(), IpcSetupError> {
    let bind_err = |source| IpcSetupError::Metrics { addr, source };
    let std_listener = std::net::TcpListener::bind(addr).map_err(bind_err)?;
    std_listener.set_nonblocking(true).map_err(bind_err)?;
    let listener = TcpListener::from_std(std_listener).map_err(bind_err)?;
    tracing::info!("metrics on http://{addr}/metrics");
    tokio::spawn(accept_loop(listener, loop_tx));
    Ok(())
}

async fn accept_loop(listener: TcpListener, loop_tx: mpsc::Sender<ClientInput>) {
    let open = Arc::new(AtomicUsize::new(0));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::debug!("metrics accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if open.fetch_add(1, Ordering::Relaxed) >= CONNECTIONS_MAX {
            open.fetch_sub(1, Ordering::Relaxed);
            continue; // Dropped: closed at once.
        }
        let (open, loop_tx) = (open.clone(), loop_tx.clone());
        tokio::spawn(async move {
            let _ = tokio::time::timeout(READ_TIMEOUT * 2, serve(stream, loop_tx)).await;
            open.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

async fn serve(mut stream: TcpStream, loop_tx: mpsc::Sender<ClientInput>) {
    let head = match tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream)).await {
        Ok(Some(head)) => head,
        Ok(None) => {
            return respond(&mut stream, 400, "Bad Request", "text/plain", b"bad request\n", true).await
        }
        Err(_) => return,
    };
    let (status, reason, body, head_only) = match route(&head) {
        Route::Metrics { head_only } => {
            let (tx, rx) = oneshot::channel();
            if loop_tx.send(ClientInput::Metrics(tx)).await.is_err() {
                return;
            }
            match rx.await {
                Ok(text) => (200, "OK", text.into_bytes(), head_only),
                Err(_) => return,
            }
        }
        Route::NotFound => (404, "Not Found", b"not found: try /metrics\n".to_vec(), false),
        Route::NotAllowed => (405, "Method Not Allowed", b"only GET and HEAD\n".to_vec(), false),
        Route::Bad => (400, "Bad Request", b"bad request\n".to_vec(), false),
    };
    let content_type = if status == 200 { super::metrics::CONTENT_TYPE } else { "text/plain" };
    respond(&mut stream, status, reason, content_type, &body, !head_only).await;
}

/// Reads until the blank line that ends the head; `None` past [`REQUEST_MAX`] or at EOF.
async fn read_head(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    loop {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
        if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
            return Some(head);
        }
        if head.len() > REQUEST_MAX {
            return None;
        }
    }
}

/// What a request asks for.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Metrics { head_only: bool },
    NotFound,
    NotAllowed,
    Bad,
}

/// Routes on the request line alone: `METHOD TARGET HTTP/1.x`.
fn route(head: &[u8]) -> Route {
    let line_end = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
    let Ok(line) = std::str::from_utf8(&head[..line_end]) else { return Route::Bad };
    let mut parts = line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Route::Bad;
    };
    if !version.starts_with("HTTP/1.") || !target.starts_with('/') {
        return Route::Bad;
    }
    let path = target.split('?').next().unwrap_or(target);
    match (method, path) {
        ("GET", "/metrics") => Route::Metrics { head_only: false },
        ("HEAD", "/metrics") => Route::Metrics { head_only: true },
        ("GET" | "HEAD", _) => Route::NotFound,
        _ if method.bytes().all(|b| b.is_ascii_uppercase()) && !method.is_empty() => Route::NotAllowed,
        _ => Route::Bad,
    }
}

async fn respond(
    stream: &mut TcpStream,
    status: u16,
    reason: &str,
    content_type: &str,
    body: &[u8],
    with_body: bool,
) {
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if stream.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    if with_body {
        let _ = stream.write_all(body).await;
    }
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn only_get_and_head_of_metrics_are_served() {
        assert_eq!(route(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), Route::Metrics { head_only: false });
        assert_eq!(route(b"GET /metrics?x=1 HTTP/1.0\r\n\r\n"), Route::Metrics { head_only: false });
        assert_eq!(route(b"HEAD /metrics HTTP/1.1\r\n\r\n"), Route::Metrics { head_only: true });
        assert_eq!(route(b"GET / HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert_eq!(route(b"GET /metricsx HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert_eq!(route(b"POST /metrics HTTP/1.1\r\n\r\n"), Route::NotAllowed);
        assert_eq!(route(b"GET /metrics\r\n\r\n"), Route::Bad);
        assert_eq!(route(b"GET metrics HTTP/1.1\r\n\r\n"), Route::Bad);
        assert_eq!(route(b"GET /metrics SMTP/1.1\r\n\r\n"), Route::Bad);
        assert_eq!(route(b"\xff\xfe /metrics HTTP/1.1\r\n\r\n"), Route::Bad);
        assert_eq!(route(b""), Route::Bad);
    }

    proptest! {
        #[test]
        fn any_bytes_route_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = route(&bytes);
        }
    }
}
