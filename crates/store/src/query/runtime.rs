//! The runtime queries run on, apart from the one that serves HTTP.
//!
//! Planning constant-folds expressions and executing a query is CPU work that can take
//! seconds. On the threads that also answer the collector and `/healthz`, one heavy query would
//! delay every acknowledgement. So queries get their own tokio runtime (as InfluxDB 3's
//! dedicated executor does): its threads run at a lower scheduling priority, so the kernel
//! prefers the serving threads whenever both want a core, and they have large stacks, so a
//! deeply nested statement cannot overflow them while it is planned.

use std::future::Future;

use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

use crate::{Error, Result};

/// Stack of each query thread: planning recurses over the statement.
const STACK_BYTES: usize = 64 << 20;
/// How much lower than the serving threads query threads are scheduled (`nice` increment).
const NICENESS: i32 = 10;

/// A multi-threaded tokio runtime for queries, shut down without blocking when dropped.
#[derive(Debug)]
pub(crate) struct QueryRuntime {
    runtime: Option<Runtime>,
}

impl QueryRuntime {
    /// Starts `threads` worker threads (at least one).
    pub(crate) fn new(threads: usize) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .max_blocking_threads(threads.max(1) * 4)
            .thread_name("oriel-query")
            .thread_stack_size(STACK_BYTES)
            .on_thread_start(lower_priority)
            .enable_all()
            .build()
            .map_err(|e| Error::Internal(format!("cannot start the query runtime: {e}")))?;
        Ok(Self { runtime: Some(runtime) })
    }

    /// Runs `task` on the query threads.
    pub(crate) fn spawn<F>(&self, task: F) -> Result<JoinHandle<F::Output>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let runtime = self.runtime.as_ref().ok_or(Error::Closed)?;
        Ok(runtime.spawn(task))
    }
}

impl Drop for QueryRuntime {
    fn drop(&mut self) {
        // Dropping a runtime blocks until its tasks end, which panics inside another runtime.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

fn lower_priority() {
    // SAFETY: setpriority on the calling thread (who = 0 with PRIO_PROCESS names the calling
    // thread on Linux); it touches no memory. Failure only means normal priority.
    #[cfg(target_os = "linux")]
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, NICENESS);
    }
}
