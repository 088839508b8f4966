//! What bounds a connection before any handler runs: at most `max_connections` open at
//! once (one more is closed as soon as it is accepted, so the process keeps file
//! descriptors for the ones it serves and for its database), request headers read
//! within `header_timeout` (HTTP/1: hyper closes the connection otherwise, an idle
//! keep-alive connection too), bodies read within `body_timeout` (`body_deadline`),
//! HTTP/2 peers pinged and dropped when silent. The TLS handshake has axum-server's own
//! 10 s limit.
#![forbid(unsafe_code)]

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum_server::accept::Accept;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::http::error::err;
use crate::limits::inc;

/// File descriptors kept for everything but client connections (database, logs,
/// webhooks, the listener itself).
pub const RESERVED_FDS: u64 = 256;

/// Connections closed at once because `max_connections` were open.
static REFUSED: AtomicU64 = AtomicU64::new(0);
/// Requests answered 408 because their body did not arrive in time.
static SLOW_BODIES: AtomicU64 = AtomicU64::new(0);

/// This module's counters, in Prometheus text (appended to /metrics).
pub fn render_metrics() -> String {
    format!(
        "# HELP jitsudod_connections_refused_total Connections closed at once: max_connections were open.\n\
         # TYPE jitsudod_connections_refused_total counter\n\
         jitsudod_connections_refused_total {}\n\
         # HELP jitsudod_body_timeouts_total Requests answered 408: the body did not arrive within body_timeout_seconds.\n\
         # TYPE jitsudod_body_timeouts_total counter\n\
         jitsudod_body_timeouts_total {}\n",
        REFUSED.load(Ordering::Relaxed),
        SLOW_BODIES.load(Ordering::Relaxed)
    )
}

/// An acceptor that holds one of `permits` for each connection it lets through, for
/// as long as the connection lives.
#[derive(Clone)]
pub struct Capped<A> {
    inner: A,
    permits: Arc<Semaphore>,
}

impl<A> Capped<A> {
    pub fn new(inner: A, max: usize) -> Capped<A> {
        Capped {
            inner,
            permits: Arc::new(Semaphore::new(max)),
        }
    }
}

impl<A, I, S> Accept<I, S> for Capped<A>
where
    A: Accept<I, S> + Clone + Send + Sync + 'static,
    A::Future: Send,
    I: Send + 'static,
    S: Send + 'static,
{
    type Stream = CappedStream<A::Stream>;
    type Service = A::Service;
    type Future = Pin<Box<dyn Future<Output = io::Result<(Self::Stream, Self::Service)>> + Send>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        let permit = self.permits.clone().try_acquire_owned();
        let inner = self.inner.clone();
        Box::pin(async move {
            let Ok(permit) = permit else {
                // Dropping the stream closes it: a client over the cap is told at once,
                // instead of waiting in a queue it cannot see.
                inc(&REFUSED);
                return Err(io::Error::other("connection limit reached"));
            };
            let (stream, service) = inner.accept(stream, service).await?;
            Ok((
                CappedStream {
                    inner: stream,
                    _permit: permit,
                },
                service,
            ))
        })
    }
}

/// A connection and its permit, given back when the connection is dropped.
pub struct CappedStream<T> {
    inner: T,
    _permit: OwnedSemaphorePermit,
}

impl<T: AsyncRead + Unpin> AsyncRead for CappedStream<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for CappedStream<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The soft limit on open files of this process (`/proc/self/limits`), if readable.
pub fn open_files_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line["Max open files".len()..].split_whitespace().next()?;
    match soft {
        "unlimited" => Some(u64::MAX),
        n => n.parse().ok(),
    }
}

/// The connection cap to use: `configured`, lowered to what the open-files limit leaves
/// after [`RESERVED_FDS`] (with a warning), so that connections alone can never make
/// accept(2) fail with EMFILE for everyone.
pub fn effective_cap(configured: usize, open_files: Option<u64>) -> usize {
    let Some(limit) = open_files else {
        return configured;
    };
    let room = limit.saturating_sub(RESERVED_FDS).max(16);
    if configured as u64 > room {
        tracing::warn!(
            max_connections = configured,
            open_files = limit,
            using = room,
            "limits.max_connections is above what the open-files limit (LimitNOFILE=) leaves; raise the limit or lower max_connections"
        );
        room as usize
    } else {
        configured
    }
}

/// The time a request's body has to arrive, whole, from the moment its headers were
/// read; later, reading it fails, and the answer is 408 whatever the handler made of
/// the failure. The body is not buffered here: each route's own size limit still
/// refuses a large body as soon as it goes over.
pub async fn body_deadline(State(timeout): State<Duration>, req: Request, next: Next) -> Response {
    // A request without a body (most GETs) has nothing to wait for.
    if axum::body::HttpBody::is_end_stream(req.body()) {
        return next.run(req).await;
    }
    let expired = Arc::new(AtomicBool::new(false));
    let req = req.map(|inner| {
        Body::new(Deadline {
            inner,
            sleep: Box::pin(tokio::time::sleep(timeout)),
            expired: expired.clone(),
        })
    });
    let resp = next.run(req).await;
    if !expired.load(Ordering::Relaxed) {
        return resp;
    }
    inc(&SLOW_BODIES);
    err(
        StatusCode::REQUEST_TIMEOUT,
        format!(
            "the request body did not arrive within {}s",
            timeout.as_secs()
        ),
    )
    .into_response()
}

/// A request body that fails once its deadline passes.
struct Deadline {
    inner: Body,
    sleep: Pin<Box<tokio::time::Sleep>>,
    expired: Arc<AtomicBool>,
}

#[derive(Debug)]
struct BodyTimeout;

impl std::fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body did not arrive in time")
    }
}

impl std::error::Error for BodyTimeout {}

impl http_body::Body for Deadline {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        if this.sleep.as_mut().poll(cx).is_ready() {
            this.expired.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(axum::Error::new(BodyTimeout))));
        }
        Pin::new(&mut this.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
