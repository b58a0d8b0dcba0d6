//! What the handlers share: the views of both layers, the collector, telemetry, the answer
//! cache and the options the server was started with.

use shared_logic::MetricContext;

use crate::answer_cache::AnswerCache;
use crate::batch_views::BatchViews;
use crate::collector::Collector;
use crate::query::QueryLimits;
use crate::speed_views::SpeedSwitch;
use crate::telemetry::Telemetry;

/// How the API behaves.
#[derive(Debug, Clone, Default)]
pub struct ApiOptions {
    pub limits: QueryLimits,
    /// Bearer token for the query routes (`/v1/metrics…`, `/v1/lineage`); none: open.
    pub query_token: Option<String>,
    /// Bearer tokens accepted by `POST /v1/events` (one per client, so that each has its
    /// own rate limit); empty: open (the rate limit then counts per peer address).
    pub ingest_tokens: Vec<String>,
    /// Bearer token for the admin routes (`PUT /v1/admin/speed`); none: they are disabled.
    pub admin_token: Option<String>,
    /// The metric context both layers use (windows, reporting currency).
    pub ctx: MetricContext,
    /// The rules `GET /v1/quality` judges the quality figures by.
    pub quality_rules: shared_logic::quality_rules::RuleSet,
}

/// What the handlers share.
pub struct AppState {
    pub batch: BatchViews,
    pub speed: SpeedSwitch,
    /// `None`: this server does not collect (`POST /v1/events` answers 503).
    pub collector: Option<Collector>,
    pub telemetry: Telemetry,
    /// Bounded-staleness answers for repeated queries (off by default).
    pub answers: AnswerCache,
    pub opts: ApiOptions,
}
