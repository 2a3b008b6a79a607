//! Tracking a `Future`: [`TrackedExt::tracked`].

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::{RobotActivityState, Span, Tracker};

pin_project_lite::pin_project! {
    /// A future whose run is one span.
    ///
    /// The span starts at the first poll (when the work starts, as a Python coroutine's
    /// body starts when awaited, not when created) and ends when the inner future
    /// completes. Dropped after its first poll but before completing (cancelled, timed
    /// out), it still records, up to the drop — like the Python decorator's `finally`
    /// on cancellation. Never polled, it records nothing.
    #[must_use = "futures do nothing unless polled"]
    #[derive(Debug)]
    pub struct Tracked<'a, F> {
        // Declared first, so dropped before the span: the span covers the inner drop.
        #[pin]
        inner: F,
        tracker: Option<&'a Tracker>,
        state: RobotActivityState,
        span: Option<Span<'a>>,
    }
}

impl<F: Future> Future for Tracked<'_, F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        if let Some(tracker) = this.tracker.take() {
            *this.span = Some(tracker.span(*this.state));
        }
        let out = this.inner.poll(cx);
        if out.is_ready() {
            // Ends (records) the span now rather than when the wrapper is dropped.
            drop(this.span.take());
        }
        out
    }
}

/// Adds `.tracked(state)` to every future. No runtime dependency.
///
/// ```
/// use perf_producer::{RobotActivityState, TrackedExt};
/// # let mut config = perf_producer::Config::new("doc");
/// # config.enabled = Some(false);
/// # perf_producer::init(config).unwrap();
/// async fn analyze() -> u32 { 7 }
/// let fut = analyze().tracked(RobotActivityState::AnalyzingProtocol);
/// # let _ = fut;
/// ```
pub trait TrackedExt: Future + Sized {
    /// Tracks this future through the process-wide tracker.
    fn tracked(self, state: RobotActivityState) -> Tracked<'static, Self> {
        self.tracked_with(crate::global(), state)
    }

    /// Tracks this future through `tracker`.
    fn tracked_with(self, tracker: &Tracker, state: RobotActivityState) -> Tracked<'_, Self> {
        Tracked {
            inner: self,
            tracker: Some(tracker),
            state,
            span: None,
        }
    }
}

impl<F: Future> TrackedExt for F {}
