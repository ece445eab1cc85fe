//! Accepting connections within limits: a connection cap, a deadline for request headers
//! (which also bounds how long a kept-alive connection may wait for its next request), and an
//! idle timeout for connections that stop moving bytes while no handler is working on one of
//! their requests (a client that stops reading its response included), so neither slow clients
//! nor many of them can tie the server up. Body deadlines are applied
//! where bodies are read (`server.body_read_timeout_ms`).
//!
//! Only HTTP/1.1 is served: every client of Oriel speaks it (browsers reach Oriel over HTTP/1.1
//! or through a TLS-terminating proxy), and cleartext HTTP/2 would bring a second set of
//! connection states to bound (idle streams, pings) for nobody's benefit.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// Connection limits of the server.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Most open connections; more are closed as soon as they are accepted.
    pub max_connections: usize,
    /// A request's headers must arrive within this time, counted from when the connection
    /// starts waiting for them.
    pub header_read_timeout: Duration,
    /// A connection that moves no byte in either direction for this long is closed.
    pub idle_timeout: Duration,
    /// How long a shutdown waits for in-flight requests.
    pub shutdown_timeout: Duration,
}

/// Counters for `/metrics`.
mod m {
    pub(super) const OPEN: &str = "oriel_http_open_connections";
    pub(super) const REFUSED: &str = "oriel_http_refused_connections_total";
    pub(super) const IDLE_CLOSED: &str = "oriel_http_idle_connections_closed_total";
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets in-flight requests finish
/// for up to the shutdown timeout.
pub async fn serve(listener: TcpListener, router: Router, limits: ConnectionLimits, shutdown: impl Future<Output = ()>) {
    metrics::describe_gauge!(m::OPEN, "open HTTP connections");
    metrics::describe_counter!(m::REFUSED, "connections closed at once because server.max_connections were open");
    metrics::describe_counter!(m::IDLE_CLOSED, "connections closed after server.idle_timeout_ms without traffic");
    metrics::counter!(m::REFUSED).increment(0);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout).max_buf_size(64 * 1024);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    // Out of descriptors or a transient network error: pause instead of spinning.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            metrics::counter!(m::REFUSED).increment(1);
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let activity = Arc::new(Activity::new());
        let io = TokioIo::new(Watched { inner: stream, activity: Arc::clone(&activity) });
        // While a handler works on a request the connection is busy, not idle: a long query
        // sends nothing until its first rows. Once the response starts, its bytes must move: a
        // client that stops reading a response is idle like any other.
        let service = tower::service_fn({
            let router = router.clone();
            let activity = Arc::clone(&activity);
            move |mut request: axum::http::Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                let busy = Busy::new(Arc::clone(&activity));
                let answer = router.clone().oneshot(request);
                async move {
                    let response = answer.await;
                    drop(busy);
                    response
                }
            }
        });
        let connection = builder.serve_connection(io, TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        let idle = limits.idle_timeout;
        tokio::spawn(async move {
            metrics::gauge!(m::OPEN).increment(1.0);
            tokio::select! {
                result = connection => {
                    if let Err(error) = result {
                        tracing::debug!(%error, %peer, "connection ended with an error");
                    }
                }
                () = activity.idle_for(idle) => {
                    metrics::counter!(m::IDLE_CLOSED).increment(1);
                    tracing::debug!(%peer, "closed an idle connection");
                }
            }
            metrics::gauge!(m::OPEN).decrement(1.0);
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.shutdown_timeout, graceful.shutdown()).await.is_err() {
        tracing::warn!(timeout = ?limits.shutdown_timeout, "in-flight requests did not finish in time; closing anyway");
    }
}

/// When a connection last moved a byte, and how many of its requests are being answered.
struct Activity {
    started: Instant,
    last_ms: AtomicU64,
    in_flight: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self { started: Instant::now(), last_ms: AtomicU64::new(0), in_flight: AtomicU64::new(0) }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn begin(&self) {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        self.touch();
    }

    fn end(&self) {
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.touch();
    }

    /// Resolves once nothing moved for `idle` while no request was being answered.
    async fn idle_for(&self, idle: Duration) {
        loop {
            let last = self.started + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let deadline = last + idle;
            if Instant::now() >= deadline && self.in_flight.load(Ordering::SeqCst) == 0 {
                return;
            }
            tokio::time::sleep_until(deadline.max(Instant::now() + Duration::from_millis(100)).into()).await;
        }
    }
}

/// A request a handler is working on; dropped when the response starts (or the request is
/// abandoned).
struct Busy(Arc<Activity>);

impl Busy {
    fn new(activity: Arc<Activity>) -> Self {
        activity.begin();
        Self(activity)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.end();
    }
}

/// A socket that records when it last moved a byte.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
