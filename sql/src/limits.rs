//! The query handlers, bounded: every statement runs under a deadline (the server's
//! statement timeout, or the session's `SET statement_timeout` when shorter) that covers
//! planning, the merge and streaming the rows; answers longer than the row cap end with
//! an error instead of exhausting the server; and at most a few statements execute at
//! once, so fifty sessions queue instead of thrashing two cores.

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use async_trait::async_trait;
use datafusion::prelude::SessionContext;
use datafusion_postgres::DfSessionService;
use futures::{Sink, Stream, StreamExt};
use pgwire::api::portal::Portal;
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{QueryResponse, Response, SendableRowStream};
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::data::DataRow;
use pgwire::messages::PgWireBackendMessage;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::text_answers;

/// Bounds on one statement.
#[derive(Debug, Clone, Copy)]
pub struct StatementLimits {
    pub timeout: Duration,
    pub max_rows: usize,
}

/// DataFusion's session service behind the limits (and its session context, for the
/// portals answered in [`crate::text_answers`]).
pub struct Bounded {
    inner: Arc<DfSessionService>,
    ctx: Arc<SessionContext>,
    limits: StatementLimits,
    running: Arc<Semaphore>,
}

fn error(code: &str, message: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".into(),
        code.into(),
        message,
    )))
}

fn timed_out() -> PgWireError {
    error(
        "57014",
        "canceling statement due to statement timeout".into(),
    )
}

impl Bounded {
    pub fn new(
        inner: Arc<DfSessionService>,
        ctx: Arc<SessionContext>,
        limits: StatementLimits,
        max_running: usize,
    ) -> Bounded {
        Bounded {
            inner,
            ctx,
            limits,
            running: Arc::new(Semaphore::new(max_running.max(1))),
        }
    }

    /// When the statement must be done: the server's timeout, or the session's if shorter.
    fn deadline<C: ClientInfo>(&self, client: &C) -> Instant {
        let session = client
            .metadata()
            .get("statement_timeout_ms")
            .and_then(|ms| ms.parse::<u64>().ok())
            .filter(|ms| *ms > 0)
            .map(Duration::from_millis);
        let timeout = session.map_or(self.limits.timeout, |s| s.min(self.limits.timeout));
        Instant::now() + timeout
    }

    async fn permit(&self, deadline: Instant) -> PgWireResult<OwnedSemaphorePermit> {
        tokio::time::timeout_at(deadline, self.running.clone().acquire_owned())
            .await
            .map_err(|_| timed_out())?
            .map_err(|_| error("57P01", "the SQL endpoint is shutting down".into()))
    }

    /// The response with its rows under the deadline and the row cap; the permit is held
    /// until the rows are sent.
    fn bound(
        &self,
        response: Response,
        deadline: Instant,
        permit: Arc<OwnedSemaphorePermit>,
    ) -> Response {
        match response {
            Response::Query(q) => {
                let tag = q.command_tag().to_string();
                let schema = q.row_schema();
                let rows = bounded_rows(q.data_rows, deadline, self.limits.max_rows, permit);
                let mut bounded = QueryResponse::new(schema, rows);
                bounded.set_command_tag(&tag);
                Response::Query(bounded)
            }
            other => other,
        }
    }
}

/// `rows` until the deadline (then a timeout error) and at most `cap` of them (then a
/// row-cap error); dropping the inner stream stops DataFusion's execution. One timer per
/// answer, polled only while the rows are not ready, and the clock read every
/// [`DEADLINE_CHECK_ROWS`] rows of a stream that never waits: an answer's tens of
/// thousands of rows cost no timer each.
pub fn bounded_rows(
    rows: SendableRowStream,
    deadline: Instant,
    cap: usize,
    permit: Arc<OwnedSemaphorePermit>,
) -> impl Stream<Item = PgWireResult<DataRow>> + Send + 'static {
    let mut state = Some((rows, Box::pin(tokio::time::sleep_until(deadline)), permit));
    let mut sent = 0usize;
    futures::stream::poll_fn(move |cx| {
        let Some((rows, timer, _permit)) = state.as_mut() else {
            return Poll::Ready(None);
        };
        let next = match rows.poll_next_unpin(cx) {
            // The clock, not the timer, says whether the deadline passed: a DataFusion
            // stream that yields because it used up tokio's cooperative budget leaves none
            // for the timer, which then never fires (the task is woken again at once).
            Poll::Pending if Instant::now() >= deadline => Some(Err(timed_out())),
            Poll::Pending => {
                let _ = timer.as_mut().poll(cx);
                return Poll::Pending;
            }
            Poll::Ready(Some(Ok(_))) if sent == cap => Some(Err(error(
                "54000",
                format!("the answer has more than {cap} rows, the SQL endpoint's cap; add LIMIT, aggregate, or narrow the window_start range"),
            ))),
            Poll::Ready(Some(Ok(_)))
                if sent % DEADLINE_CHECK_ROWS == DEADLINE_CHECK_ROWS - 1
                    && Instant::now() >= deadline =>
            {
                Some(Err(timed_out()))
            }
            Poll::Ready(Some(Ok(row))) => {
                sent += 1;
                return Poll::Ready(Some(Ok(row)));
            }
            Poll::Ready(other) => other,
        };
        // The answer ends here: the rows (and DataFusion's execution), the timer and the
        // permit go.
        state = None;
        Poll::Ready(next)
    })
}

/// How many ready rows pass between two reads of the clock.
const DEADLINE_CHECK_ROWS: usize = 1024;

#[async_trait]
impl SimpleQueryHandler for Bounded {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let deadline = self.deadline(client);
        let permit = Arc::new(self.permit(deadline).await?);
        let responses = tokio::time::timeout_at(
            deadline,
            SimpleQueryHandler::do_query(&*self.inner, client, query),
        )
        .await
        .map_err(|_| timed_out())??;
        Ok(responses
            .into_iter()
            .map(|r| self.bound(r, deadline, permit.clone()))
            .collect())
    }
}

#[async_trait]
impl ExtendedQueryHandler for Bounded {
    type Statement = <DfSessionService as ExtendedQueryHandler>::Statement;
    type QueryParser = <DfSessionService as ExtendedQueryHandler>::QueryParser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        self.inner.query_parser()
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Self::Statement>,
        max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let deadline = self.deadline(client);
        let permit = Arc::new(self.permit(deadline).await?);
        let answer = async {
            match text_answers::portal_answer(&self.ctx, portal, client).await {
                Some(answer) => answer,
                None => {
                    ExtendedQueryHandler::do_query(&*self.inner, client, portal, max_rows).await
                }
            }
        };
        let response = tokio::time::timeout_at(deadline, answer)
            .await
            .map_err(|_| timed_out())??;
        Ok(self.bound(response, deadline, permit))
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    fn rows(n: usize, pause: Duration) -> SendableRowStream {
        Box::pin(futures::stream::iter(0..n).then(move |_| async move {
            tokio::time::sleep(pause).await;
            Ok(DataRow::default())
        }))
    }

    async fn run(stream: impl Stream<Item = PgWireResult<DataRow>>) -> (usize, Option<String>) {
        let mut sent = 0;
        futures::pin_mut!(stream);
        while let Some(item) = stream.next().await {
            match item {
                Ok(_) => sent += 1,
                Err(PgWireError::UserError(e)) => return (sent, Some(e.code)),
                Err(e) => return (sent, Some(e.to_string())),
            }
        }
        (sent, None)
    }

    fn permit() -> Arc<OwnedSemaphorePermit> {
        Arc::new(Arc::new(Semaphore::new(1)).try_acquire_owned().unwrap())
    }

    #[tokio::test(start_paused = true)]
    async fn rows_past_the_cap_end_the_answer_with_an_error() {
        let far = Instant::now() + Duration::from_secs(60);
        assert_eq!(
            run(bounded_rows(rows(3, Duration::ZERO), far, 3, permit())).await,
            (3, None)
        );
        assert_eq!(
            run(bounded_rows(rows(5, Duration::ZERO), far, 3, permit())).await,
            (3, Some("54000".into()))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn rows_past_the_deadline_end_the_answer_with_a_timeout() {
        let deadline = Instant::now() + Duration::from_millis(250);
        let got = run(bounded_rows(
            rows(10, Duration::from_millis(100)),
            deadline,
            100,
            permit(),
        ))
        .await;
        assert_eq!(got, (2, Some("57014".into())));
    }

    #[tokio::test(start_paused = true)]
    async fn rows_that_never_wait_still_end_at_the_deadline() {
        let now = Instant::now();
        let ready: SendableRowStream = Box::pin(futures::stream::iter(
            (0..5_000).map(|_| Ok(DataRow::default())),
        ));
        let got = run(bounded_rows(ready, now, 10_000, permit())).await;
        assert_eq!(got, (DEADLINE_CHECK_ROWS - 1, Some("57014".into())));
    }

    #[tokio::test(start_paused = true)]
    async fn the_permit_is_held_until_the_answer_ends() {
        let semaphore = Arc::new(Semaphore::new(1));
        let permit = Arc::new(semaphore.clone().try_acquire_owned().unwrap());
        let far = Instant::now() + Duration::from_secs(60);
        let stream = bounded_rows(rows(3, Duration::ZERO), far, 10, permit);
        futures::pin_mut!(stream);
        assert!(stream.next().await.is_some());
        assert_eq!(semaphore.available_permits(), 0, "held while rows remain");
        while stream.next().await.is_some() {}
        assert_eq!(semaphore.available_permits(), 1, "given back at the end");
    }
}
