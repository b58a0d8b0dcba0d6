//! The speed layer's real-time views, as the serving layer reads them: from the speed
//! layer running in this process (a [`RealtimeSource`] handle), or from one or more speed
//! instances over HTTP (`GET /v1/speed/views/{metric}`), whose views are merged — each
//! instance holds the partitions its consumer group gave it, and the merge of partitions
//! is the same monoid merge as everywhere else.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use lambda_io::grouped_rows;
use lambda_io::speed_api::{QualityNotes, RealtimeSource, Status};
use shared_logic::arrival::Arrivals;
use shared_logic::dead_letter_sample::DeadLetterSamples;
use shared_logic::metric::MAX_DIMENSIONS;
use shared_logic::{GroupKey, Grouping, Registered};

use crate::error::ServingError;
pub use crate::speed_fetch::SpeedTime;
use crate::speed_fetch::{
    authorized, fetch, fetch_grouped, instance_status, join, unreachable_instance,
};
use crate::speed_rows::SpeedRows;
use crate::speed_window_cache::{push_by_window, WindowCache};

/// Where real-time views come from.
#[derive(Clone)]
pub enum SpeedViews {
    /// The speed layer runs in this process.
    InProcess(Arc<dyn RealtimeSource>),
    /// Speed instances reached over HTTP (base URLs such as `http://speed-0:9101`), with
    /// their speed token sent as `Authorization: Bearer …` when they need one.
    Remote {
        instances: Vec<url::Url>,
        client: reqwest::Client,
        token: Option<String>,
        /// Each instance's grouped rows as last read, window by window.
        kept: Arc<WindowCache>,
    },
}

/// The speed views a server reads, replaceable while it runs (to switch to a replayed
/// views version, `PUT /v1/admin/speed`). Each query takes the current views once, so an
/// answer never mixes two versions, and the old version answers until the switch.
/// It also counts the switches (its generation), so that cached answers of the old views
/// are never served after a switch.
pub struct SpeedSwitch(RwLock<(u64, Arc<SpeedViews>)>);

impl From<SpeedViews> for SpeedSwitch {
    fn from(views: SpeedViews) -> Self {
        SpeedSwitch(RwLock::new((0, Arc::new(views))))
    }
}

impl SpeedSwitch {
    /// The views answering now.
    pub fn current(&self) -> Arc<SpeedViews> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).1.clone()
    }

    /// How many switches happened.
    pub fn generation(&self) -> u64 {
        self.0.read().unwrap_or_else(|p| p.into_inner()).0
    }

    /// Switches to `views`; returns the previous ones.
    pub fn replace(&self, views: SpeedViews) -> Arc<SpeedViews> {
        let mut current = self.0.write().unwrap_or_else(|p| p.into_inner());
        current.0 += 1;
        std::mem::replace(&mut current.1, Arc::new(views))
    }
}

impl SpeedViews {
    /// The speed layer running in this process.
    pub fn in_process(views: impl RealtimeSource + 'static) -> SpeedViews {
        SpeedViews::InProcess(Arc::new(views))
    }

    /// Remote instances, with a per-request timeout.
    pub fn remote(instances: &[String], timeout: Duration) -> Result<SpeedViews, ServingError> {
        let mut urls = Vec::new();
        for text in instances {
            let url = url::Url::parse(text)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https"))
                .ok_or_else(|| {
                    ServingError::bad(
                        "bad_speed_url",
                        format!("speed instance `{text}` is not an http(s) URL"),
                    )
                })?;
            urls.push(url);
        }
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| ServingError::Internal(format!("HTTP client: {e}")))?;
        Ok(SpeedViews::Remote {
            instances: urls,
            client,
            token: None,
            kept: Arc::default(),
        })
    }

    /// The same instances, reached with `token` (`lambda speed --speed-token`); no effect
    /// on the in-process layer.
    pub fn with_token(mut self, token: Option<String>) -> SpeedViews {
        if let SpeedViews::Remote { token: t, .. } = &mut self {
            *t = token;
        }
        self
    }

    /// The speed token sent to remote instances.
    pub fn token(&self) -> Option<&str> {
        match self {
            SpeedViews::Remote { token, .. } => token.as_deref(),
            SpeedViews::InProcess(_) => None,
        }
    }

    /// Where the views come from: `in-process` or each instance's URL.
    pub fn describe(&self) -> Vec<String> {
        match self {
            SpeedViews::InProcess(_) => vec!["in-process".into()],
            SpeedViews::Remote { instances, .. } => {
                instances.iter().map(|u| u.to_string()).collect()
            }
        }
    }

    /// Hands every state of metric `M` with a window starting in `[from_ms, to_ms)` to
    /// `sink`, and says how far the speed layer is.
    pub async fn read<M: Registered>(
        &self,
        from_ms: i64,
        to_ms: i64,
        mut sink: impl FnMut(&GroupKey, &M::State),
    ) -> Result<SpeedTime, ServingError> {
        match self {
            SpeedViews::InProcess(views) => {
                let progress = views.visit_aggregates(&mut |aggregates| {
                    for (key, state) in M::views_in(aggregates).in_windows(from_ms, to_ms) {
                        sink(key, state);
                    }
                });
                Ok(SpeedTime::in_process(&progress, views.as_ref()))
            }
            SpeedViews::Remote {
                instances,
                client,
                token,
                ..
            } => {
                let fetches = instances
                    .iter()
                    .map(|base| fetch::<M>(authorized(client, token), base, from_ms, to_ms));
                let mut time = SpeedTime::default();
                for (i, fetched) in futures::future::join_all(fetches)
                    .await
                    .into_iter()
                    .enumerate()
                {
                    let (views, t) = fetched?;
                    for (k, s) in views.iter() {
                        sink(k, s);
                    }
                    time = time.and(i, t);
                }
                Ok(time)
            }
        }
    }

    /// The states of metric `M` grouped by `grouping` (each instance groups its own: a
    /// window, the grouped values in `group_by` order, and the state merged over the
    /// instance's partitions), for windows starting in `[from_ms, to_ms)`, in pieces (one
    /// per instance and window, or one for the in-process layer), and how far the speed
    /// layer is. What crosses to this process is the rows of the windows changed since the
    /// last read of the same grouping ([`crate::speed_window_cache`]), not every key.
    pub async fn select<M: Registered>(
        &self,
        from_ms: i64,
        to_ms: i64,
        grouping: &Grouping,
    ) -> Result<(Vec<Arc<SpeedRows<M::State>>>, SpeedTime), ServingError> {
        let width = grouping.group_by.len();
        match self {
            SpeedViews::InProcess(views) => {
                let mut mismatched = false;
                let mut rows = SpeedRows::new(width);
                let progress =
                    views.select(
                        M::ID,
                        from_ms,
                        to_ms,
                        grouping,
                        &mut |key, state| match state.downcast_ref::<M::State>() {
                            Some(state) => {
                                let mut values = [""; MAX_DIMENSIONS];
                                let n = width.min(MAX_DIMENSIONS);
                                for (slot, value) in values.iter_mut().zip(key.dims()) {
                                    *slot = value;
                                }
                                rows.push(key.window, &values[..n], state.clone());
                            }
                            None => mismatched = true,
                        },
                    );
                if mismatched {
                    return Err(ServingError::Internal(format!(
                        "the in-process speed layer handed over states that are not {}'s",
                        M::NAME
                    )));
                }
                Ok((
                    vec![Arc::new(rows)],
                    SpeedTime::in_process(&progress, views.as_ref()),
                ))
            }
            SpeedViews::Remote {
                instances,
                client,
                token,
                kept,
            } => {
                let fetches = instances.iter().enumerate().map(|(i, base)| async move {
                    let entry = kept.entry(i, M::NAME, grouping);
                    let mut entry = entry.lock().await;
                    let (body, time, url, read) = fetch_grouped::<M>(
                        authorized(client, token),
                        base,
                        from_ms,
                        to_ms,
                        grouping,
                        entry.since().as_ref(),
                    )
                    .await?;
                    let mut fresh = BTreeMap::new();
                    grouped_rows::decode::<M>(body, grouping, &url, |window, dims, state| {
                        push_by_window(&mut fresh, width, window, dims, state)
                    })
                    .map_err(|e| {
                        ServingError::unavailable(
                            "speed_unavailable",
                            format!("speed instance {url}: unreadable rows: {e}"),
                        )
                    })?;
                    Ok::<_, ServingError>((entry.update(from_ms, to_ms, fresh, read), time))
                });
                let mut time = SpeedTime::default();
                let mut pieces = Vec::new();
                for (i, fetched) in futures::future::join_all(fetches)
                    .await
                    .into_iter()
                    .enumerate()
                {
                    let (rows, t) = fetched?;
                    pieces.extend(rows);
                    time = time.and(i, t);
                }
                Ok((pieces, time))
            }
        }
    }

    /// Each instance's status (one entry for the in-process layer), keyed by instance.
    pub async fn status(&self) -> Result<BTreeMap<String, Status>, ServingError> {
        match self {
            SpeedViews::InProcess(views) => {
                Ok(BTreeMap::from([("in-process".to_string(), views.status())]))
            }
            SpeedViews::Remote {
                instances,
                client,
                token,
                ..
            } => {
                let mut out = BTreeMap::new();
                for base in instances {
                    let status = instance_status(authorized(client, token), base).await?;
                    out.insert(base.to_string(), status);
                }
                Ok(out)
            }
        }
    }

    /// Each instance's status on its own, asked in parallel (an instance that does not
    /// answer hides none of the others), labelled by position: `in-process`, or `speed-<i>`
    /// in the order of the instances (`--speed-url`), so labels name no URL.
    pub async fn statuses(&self) -> Vec<(String, Result<Status, ServingError>)> {
        match self {
            SpeedViews::InProcess(views) => vec![("in-process".to_string(), Ok(views.status()))],
            SpeedViews::Remote {
                instances,
                client,
                token,
                ..
            } => {
                let asks = instances
                    .iter()
                    .map(|base| instance_status(authorized(client, token), base));
                futures::future::join_all(asks)
                    .await
                    .into_iter()
                    .enumerate()
                    .map(|(i, status)| (format!("speed-{i}"), status))
                    .collect()
            }
        }
    }
}

impl SpeedViews {
    /// What the speed layer saw of the hours starting in `[from_ms, to_ms)` (arrivals,
    /// dead-letter samples; `GET /v1/speed/quality`), merged over the instances.
    pub async fn quality_notes(
        &self,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<(Arrivals, DeadLetterSamples), ServingError> {
        let notes: Vec<QualityNotes> = match self {
            SpeedViews::InProcess(views) => vec![views.quality_notes(from_ms, to_ms)],
            SpeedViews::Remote {
                instances,
                client,
                token,
                ..
            } => {
                let asks = instances.iter().map(|base| async {
                    let mut url = join(base, "v1/speed/quality")?;
                    url.query_pairs_mut()
                        .append_pair("from", &from_ms.to_string())
                        .append_pair("to", &to_ms.to_string());
                    authorized(client, token)(url.clone())
                        .send()
                        .await
                        .and_then(|r| r.error_for_status())
                        .map_err(|e| unreachable_instance(&url, e))?
                        .json::<QualityNotes>()
                        .await
                        .map_err(|e| unreachable_instance(&url, e))
                });
                futures::future::join_all(asks)
                    .await
                    .into_iter()
                    .collect::<Result<_, _>>()?
            }
        };
        let mut arrivals = Arrivals::default();
        let mut samples = DeadLetterSamples::default();
        for n in notes {
            for entry in &n.arrivals {
                arrivals.add_entry(entry);
            }
            for sample in n.dead_letters {
                samples.offer(sample);
            }
        }
        Ok((arrivals, samples))
    }
}
