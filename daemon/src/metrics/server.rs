//! `GET /metrics` over HTTP/1.1, on a thread of its own.
//!
//! hyper does the HTTP (a well-kept implementation: malformed requests get `400`, oversized
//! heads `431`, without any parsing of ours), on a single-threaded tokio runtime so that
//! the whole server is one thread however many clients come. What a client can cost is
//! bounded by [`Limits`]:
//!
//! - at most `max_connections` at once; a connection past that is closed at once (a flood
//!   cannot pile up memory or descriptors, and the daemon's own loop is never involved);
//! - the request head must arrive within `header_timeout` (slowloris), and the whole
//!   exchange, response included, must finish within `connection_timeout` (a client that
//!   stops reading): then the connection is dropped;
//! - one request per connection (no keep-alive), so the timeout bounds exactly one
//!   exchange; Prometheus reconnects per scrape at no measurable cost at its intervals;
//! - hyper's read buffer is capped at [`MAX_BUF`].
//!
//! Only `GET` (and `HEAD`) of `/metrics` is answered with the exposition; another path gets
//! `404`, another method on `/metrics` gets `405` with `Allow`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::{oneshot, Semaphore};

use super::{Exposition, MetricsError, OPENMETRICS_CONTENT_TYPE};

/// hyper's read buffer per connection (its minimum is 8 KiB); a request head larger than
/// this is refused.
pub const MAX_BUF: usize = 16 * 1024;
/// After `accept` fails (out of descriptors, say), wait this long before the next one
/// instead of spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// What one client may cost (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once; more are closed on arrival.
    pub max_connections: usize,
    /// Time for the request head to arrive.
    pub header_timeout: Duration,
    /// Time for the whole exchange.
    pub connection_timeout: Duration,
}

impl Default for Limits {
    /// 16 connections (a robot has one or two scrapers), 5 s for the head, 10 s in all
    /// (Prometheus' default scrape timeout).
    fn default() -> Limits {
        Limits {
            max_connections: 16,
            header_timeout: Duration::from_secs(5),
            connection_timeout: Duration::from_secs(10),
        }
    }
}

/// The running server. Dropping it stops it (open connections are cut).
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds `addr` now (a port in use is an error here, not later) and serves
    /// `exposition` on a new thread.
    pub fn start(
        addr: SocketAddr,
        exposition: Exposition,
        limits: Limits,
    ) -> Result<Server, MetricsError> {
        let bind_err = |source| MetricsError::Bind { addr, source };
        let listener = std::net::TcpListener::bind(addr).map_err(bind_err)?;
        listener.set_nonblocking(true).map_err(bind_err)?;
        let local = listener.local_addr().map_err(bind_err)?;
        let start_err = |source| MetricsError::Start {
            what: "server runtime",
            source,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(start_err)?;
        let listener = {
            let _context = runtime.enter();
            tokio::net::TcpListener::from_std(listener).map_err(start_err)?
        };
        let (stop, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("metrics-http".into())
            .spawn(move || runtime.block_on(serve(listener, exposition, limits, stopped)))
            .map_err(|source| MetricsError::Start {
                what: "server thread",
                source,
            })?;
        log::info!("serving /metrics on http://{local}/metrics");
        Ok(Server {
            addr: local,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(
    listener: tokio::net::TcpListener,
    exposition: Exposition,
    limits: Limits,
    mut stopped: oneshot::Receiver<()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let accepted = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(e) => {
                log::debug!("metrics server: accept failed: {e}");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            // Over the limit: closing now is the cheapest answer.
            drop(stream);
            continue;
        };
        let exposition = exposition.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let response = respond(&req, &exposition);
                async move { Ok::<_, Infallible>(response) }
            });
            let mut http = http1::Builder::new();
            http.timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .max_buf_size(MAX_BUF)
                .keep_alive(false);
            let conn = http.serve_connection(TokioIo::new(stream), service);
            // Errors (timeouts, resets, garbage) only concern that client.
            let _ = tokio::time::timeout(limits.connection_timeout, conn).await;
            drop(permit);
        });
    }
}

fn respond(req: &Request<Incoming>, exposition: &Exposition) -> Response<Full<Bytes>> {
    if req.uri().path() != "/metrics" {
        return plain(StatusCode::NOT_FOUND, "only /metrics is served here\n");
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "use GET\n");
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let mut r = Response::new(Full::new(Bytes::from(exposition.openmetrics())));
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(OPENMETRICS_CONTENT_TYPE),
    );
    r
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}
