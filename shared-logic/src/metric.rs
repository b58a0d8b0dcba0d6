//! The metric definitions: each metric, its dimensions, its state and its values, once.
//!
//! A metric says which events it counts ([`Metric::applies_to`]), how an event picks its
//! dimension values, how an event updates the state, and how a (merged) state evaluates to
//! values. Derived values (conversion rates, average order value) are computed from merged
//! state in [`Metric::values`], never stored or merged themselves.

use serde::{Deserialize, Serialize};

use crate::event::{EventRef, EventType};
use crate::hll::Hll;
use crate::money::Rates;
use crate::state::{Aggregates, Mergeable, MetricViews};
use crate::window::WindowSpec;

/// Most dimensions any metric has.
pub const MAX_DIMENSIONS: usize = 4;

/// The configuration a metric's meaning depends on. Batch and speed must use equal contexts
/// for their views to be comparable; [`MetricContext::fingerprint`] identifies one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricContext {
    pub windows: WindowSpec,
    pub rates: Rates,
    /// Inactivity that ends a session (the `sessions` metric), ms.
    pub session_gap_ms: i64,
    /// In which window a cancelled, refunded or deleted order's revenue is reversed (the
    /// `orders` metric).
    pub reversal: crate::cdc::ReversalWindow,
}

impl Default for MetricContext {
    /// One-minute tumbling windows, the shipped rates table, revenue in USD.
    fn default() -> Self {
        MetricContext {
            windows: WindowSpec::default(),
            rates: Rates::default_usd(),
            session_gap_ms: crate::sessions::DEFAULT_GAP_MS,
            reversal: crate::cdc::ReversalWindow::default(),
        }
    }
}

impl MetricContext {
    /// Identifies the logic version, window spec, rates table, session gap and reversal
    /// window.
    pub fn fingerprint(&self) -> String {
        format!(
            "v{}-{:?}-{:016x}-gap{}-reversal-{:?}",
            crate::LOGIC_VERSION,
            self.windows,
            self.rates.fingerprint(),
            self.session_gap_ms,
            self.reversal
        )
    }
}

/// The type of a reported value (the column type in view files).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueKind {
    /// Unsigned count or distinct-count estimate.
    Count,
    /// Minor units of the reporting currency.
    Money,
    /// Derived ratio (nullable).
    Ratio,
}

/// A value a metric reports.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Value {
    /// A count or an estimate of distinct values.
    Count(u64),
    /// Money in minor units of the reporting currency.
    Money(i64),
    /// A derived ratio; `None` when its denominator is zero.
    Ratio(Option<f64>),
}

/// One metric: dimensions, mergeable state, update and evaluation.
pub trait Metric: 'static {
    /// The metric's name in the API and in view paths.
    const NAME: &'static str;
    /// Dimension names, in key order.
    const DIMENSIONS: &'static [&'static str];
    /// Value names and kinds, in the order [`Metric::values`] returns them.
    const VALUES: &'static [(&'static str, ValueKind)];
    /// The aggregate state.
    type State: Mergeable + Send + Sync + Serialize + for<'de> Deserialize<'de>;

    /// Whether the event counts towards this metric at all.
    fn applies_to(event: &EventRef<'_>) -> bool;
    /// Writes the event's dimension values into `out[..DIMENSIONS.len()]`.
    fn dimension_values<'e>(event: &EventRef<'e>, out: &mut [&'e str]);
    /// Folds the event into the state.
    fn update(state: &mut Self::State, event: &EventRef<'_>, ctx: &MetricContext);
    /// Evaluates a (possibly merged) state; the same order as [`Metric::VALUES`].
    fn values(state: &Self::State) -> Vec<Value>;
    /// Whether a real-time window is settled once the watermark passes its end plus the
    /// allowed lateness. True for per-event metrics; a session keeps growing after the
    /// window of its start closes, so real-time `sessions` windows stay provisional.
    const SETTLES_WITH_WATERMARK: bool = true;
    /// This metric's views within a fold of every metric.
    fn views_in(aggregates: &Aggregates) -> &MetricViews<Self>
    where
        Self: Sized;
}

fn ratio(num: u64, den: u64) -> Value {
    Value::Ratio(if den == 0 {
        None
    } else {
        Some(num as f64 / den as f64)
    })
}

/// `page_views`: views and distinct users, by url, country and device.
pub struct PageViews;

/// State of [`PageViews`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PageViewsState {
    pub views: u64,
    pub users: Hll,
}

impl Mergeable for PageViewsState {
    fn merge(&mut self, other: &Self) {
        self.views += other.views;
        self.users.merge(&other.users);
    }
}

impl Metric for PageViews {
    fn views_in(aggregates: &Aggregates) -> &MetricViews<Self> {
        &aggregates.page_views
    }

    const NAME: &'static str = "page_views";
    const DIMENSIONS: &'static [&'static str] = &["url", "country", "device"];
    const VALUES: &'static [(&'static str, ValueKind)] = &[
        ("views", ValueKind::Count),
        ("distinct_users", ValueKind::Count),
    ];
    type State = PageViewsState;

    fn applies_to(event: &EventRef<'_>) -> bool {
        event.event_type() == EventType::PageView
    }

    fn dimension_values<'e>(event: &EventRef<'e>, out: &mut [&'e str]) {
        out[0] = event.url();
        out[1] = event.country();
        out[2] = event.device().as_str();
    }

    fn update(state: &mut Self::State, event: &EventRef<'_>, _ctx: &MetricContext) {
        state.views += 1;
        state.users.add(event.user_id());
    }

    fn values(state: &Self::State) -> Vec<Value> {
        vec![
            Value::Count(state.views),
            Value::Count(state.users.estimate()),
        ]
    }
}

/// `funnel`: views, carts, purchases and distinct users at each stage, by country, device
/// and category; derived: view→cart, cart→purchase and view→purchase conversion (by users).
pub struct Funnel;

/// State of [`Funnel`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FunnelState {
    pub views: u64,
    pub carts: u64,
    pub purchases: u64,
    pub view_users: Hll,
    pub cart_users: Hll,
    pub purchase_users: Hll,
}

impl Mergeable for FunnelState {
    fn merge(&mut self, other: &Self) {
        self.views += other.views;
        self.carts += other.carts;
        self.purchases += other.purchases;
        self.view_users.merge(&other.view_users);
        self.cart_users.merge(&other.cart_users);
        self.purchase_users.merge(&other.purchase_users);
    }
}

impl Metric for Funnel {
    fn views_in(aggregates: &Aggregates) -> &MetricViews<Self> {
        &aggregates.funnel
    }

    const NAME: &'static str = "funnel";
    const DIMENSIONS: &'static [&'static str] = &["country", "device", "category"];
    const VALUES: &'static [(&'static str, ValueKind)] = &[
        ("views", ValueKind::Count),
        ("carts", ValueKind::Count),
        ("purchases", ValueKind::Count),
        ("view_users", ValueKind::Count),
        ("cart_users", ValueKind::Count),
        ("purchase_users", ValueKind::Count),
        ("view_to_cart_rate", ValueKind::Ratio),
        ("cart_to_purchase_rate", ValueKind::Ratio),
        ("view_to_purchase_rate", ValueKind::Ratio),
    ];
    type State = FunnelState;

    fn applies_to(_event: &EventRef<'_>) -> bool {
        true
    }

    fn dimension_values<'e>(event: &EventRef<'e>, out: &mut [&'e str]) {
        out[0] = event.country();
        out[1] = event.device().as_str();
        out[2] = event.category();
    }

    fn update(state: &mut Self::State, event: &EventRef<'_>, _ctx: &MetricContext) {
        let (count, users) = match event.event_type() {
            EventType::PageView => (&mut state.views, &mut state.view_users),
            EventType::AddToCart => (&mut state.carts, &mut state.cart_users),
            EventType::Purchase => (&mut state.purchases, &mut state.purchase_users),
        };
        *count += 1;
        users.add(event.user_id());
    }

    fn values(state: &Self::State) -> Vec<Value> {
        let (v, c, p) = (
            state.view_users.estimate(),
            state.cart_users.estimate(),
            state.purchase_users.estimate(),
        );
        vec![
            Value::Count(state.views),
            Value::Count(state.carts),
            Value::Count(state.purchases),
            Value::Count(v),
            Value::Count(c),
            Value::Count(p),
            ratio(c, v),
            ratio(p, c),
            ratio(p, v),
        ]
    }
}

/// `revenue`: orders, items, revenue (reporting currency, minor units) and distinct buyers,
/// by category and country; derived: average order value.
pub struct Revenue;

/// State of [`Revenue`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RevenueState {
    pub orders: u64,
    pub items: u64,
    /// Minor units of the reporting currency; each event converted and rounded once.
    pub revenue_minor: i64,
    pub buyers: Hll,
}

impl Mergeable for RevenueState {
    fn merge(&mut self, other: &Self) {
        self.orders += other.orders;
        self.items += other.items;
        self.revenue_minor += other.revenue_minor;
        self.buyers.merge(&other.buyers);
    }
}

impl Metric for Revenue {
    fn views_in(aggregates: &Aggregates) -> &MetricViews<Self> {
        &aggregates.revenue
    }

    const NAME: &'static str = "revenue";
    const DIMENSIONS: &'static [&'static str] = &["category", "country"];
    const VALUES: &'static [(&'static str, ValueKind)] = &[
        ("orders", ValueKind::Count),
        ("items", ValueKind::Count),
        ("revenue_minor", ValueKind::Money),
        ("distinct_buyers", ValueKind::Count),
        ("average_order_value_minor", ValueKind::Ratio),
    ];
    type State = RevenueState;

    fn applies_to(event: &EventRef<'_>) -> bool {
        event.event_type() == EventType::Purchase
    }

    fn dimension_values<'e>(event: &EventRef<'e>, out: &mut [&'e str]) {
        out[0] = event.category();
        out[1] = event.country();
    }

    fn update(state: &mut Self::State, event: &EventRef<'_>, ctx: &MetricContext) {
        // Validation guarantees quantity, price and currency on every purchase.
        let (Some(quantity), Some(price), Some(currency)) =
            (event.quantity(), event.price(), event.currency())
        else {
            return;
        };
        state.orders += 1;
        state.items += quantity as u64;
        let amount = price.0 as i128 * quantity as i128;
        state.revenue_minor += ctx
            .rates
            .to_reporting(amount, currency, event.event_time().0);
        state.buyers.add(event.user_id());
    }

    fn values(state: &Self::State) -> Vec<Value> {
        let aov = if state.orders == 0 {
            Value::Ratio(None)
        } else {
            Value::Ratio(Some(state.revenue_minor as f64 / state.orders as f64))
        };
        vec![
            Value::Count(state.orders),
            Value::Count(state.items),
            Value::Money(state.revenue_minor),
            Value::Count(state.buyers.estimate()),
            aov,
        ]
    }
}

/// `sessions`: per window of session start, by country and device: sessions, their total
/// duration, page views and bounces (one-event sessions); derived: average duration, page
/// views per session, bounce rate. Sessions are built by [`crate::sessions`] (a user's
/// events, not one event at a time), so this metric takes no part in the per-event fold:
/// [`crate::MetricViews::apply_session`] adds and retracts whole sessions.
pub struct Sessions;

/// State of [`Sessions`]: signed sums, so that a session merged into another by a late
/// event can be retracted (a commutative group).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SessionsState {
    pub sessions: i64,
    pub duration_ms: i64,
    pub page_views: i64,
    pub bounces: i64,
}

impl SessionsState {
    /// Adds (`sign` = 1) or retracts (`sign` = -1) one session.
    pub fn add(&mut self, session: &crate::sessions::Session, sign: i64) {
        self.sessions += sign;
        self.duration_ms += sign * session.duration_ms();
        self.page_views += sign * session.page_views as i64;
        self.bounces += sign * session.is_bounce() as i64;
    }
}

impl Mergeable for SessionsState {
    fn merge(&mut self, other: &Self) {
        self.sessions += other.sessions;
        self.duration_ms += other.duration_ms;
        self.page_views += other.page_views;
        self.bounces += other.bounces;
    }
}

impl Metric for Sessions {
    fn views_in(aggregates: &Aggregates) -> &MetricViews<Self> {
        &aggregates.sessions
    }

    const NAME: &'static str = "sessions";
    const DIMENSIONS: &'static [&'static str] = &["country", "device"];
    const VALUES: &'static [(&'static str, ValueKind)] = &[
        ("sessions", ValueKind::Count),
        ("total_duration_ms", ValueKind::Count),
        ("page_views", ValueKind::Count),
        ("bounces", ValueKind::Count),
        ("average_duration_ms", ValueKind::Ratio),
        ("page_views_per_session", ValueKind::Ratio),
        ("bounce_rate", ValueKind::Ratio),
    ];
    type State = SessionsState;

    fn applies_to(_event: &EventRef<'_>) -> bool {
        false
    }

    fn dimension_values<'e>(event: &EventRef<'e>, out: &mut [&'e str]) {
        out[0] = event.country();
        out[1] = event.device().as_str();
    }

    fn update(_state: &mut Self::State, _event: &EventRef<'_>, _ctx: &MetricContext) {}

    const SETTLES_WITH_WATERMARK: bool = false;

    fn values(state: &Self::State) -> Vec<Value> {
        let count = |v: i64| v.max(0) as u64;
        let (n, duration, views, bounces) = (
            count(state.sessions),
            count(state.duration_ms),
            count(state.page_views),
            count(state.bounces),
        );
        vec![
            Value::Count(n),
            Value::Count(duration),
            Value::Count(views),
            Value::Count(bounces),
            ratio(duration, n),
            ratio(views, n),
            ratio(bounces, n),
        ]
    }
}

/// `orders`: from the `orders` table's change stream (see [`crate::cdc`]), by the product's
/// category as of the order's `created_at` and the order's country: orders placed, gross
/// revenue, cancellations (cancelled, refunded or deleted orders) and the revenue they
/// reversed (reporting currency, minor units); derived: net revenue and cancellation rate.
/// Built from [`crate::cdc::order_deltas`], never by the per-event fold.
pub struct Orders;

/// State of [`Orders`]: signed sums (a commutative group), so that a delta computed with
/// an older product version can be retracted when a newer one arrives.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OrdersState {
    pub orders: i64,
    pub gross_minor: i64,
    pub cancellations: i64,
    pub reversed_minor: i64,
}

impl OrdersState {
    /// Adds (`sign` = 1) or retracts (`sign` = -1) one delta.
    pub fn add(&mut self, delta: &crate::cdc::OrderDelta, sign: i64) {
        self.orders += sign * delta.orders;
        self.gross_minor += sign * delta.gross_minor;
        self.cancellations += sign * delta.cancellations;
        self.reversed_minor += sign * delta.reversed_minor;
    }
}

impl Mergeable for OrdersState {
    fn merge(&mut self, other: &Self) {
        self.orders += other.orders;
        self.gross_minor += other.gross_minor;
        self.cancellations += other.cancellations;
        self.reversed_minor += other.reversed_minor;
    }
}

impl Metric for Orders {
    fn views_in(aggregates: &Aggregates) -> &MetricViews<Self> {
        &aggregates.orders
    }

    const NAME: &'static str = "orders";
    const DIMENSIONS: &'static [&'static str] = &["category", "country"];
    const VALUES: &'static [(&'static str, ValueKind)] = &[
        ("orders", ValueKind::Count),
        ("gross_revenue_minor", ValueKind::Money),
        ("cancellations", ValueKind::Count),
        ("reversed_revenue_minor", ValueKind::Money),
        ("net_revenue_minor", ValueKind::Money),
        ("cancellation_rate", ValueKind::Ratio),
    ];
    type State = OrdersState;

    fn applies_to(_event: &EventRef<'_>) -> bool {
        false
    }

    fn dimension_values<'e>(event: &EventRef<'e>, out: &mut [&'e str]) {
        out[0] = event.category();
        out[1] = event.country();
    }

    fn update(_state: &mut Self::State, _event: &EventRef<'_>, _ctx: &MetricContext) {}

    /// A cancellation can arrive long after the order's window closed.
    const SETTLES_WITH_WATERMARK: bool = false;

    fn values(state: &Self::State) -> Vec<Value> {
        let count = |v: i64| v.max(0) as u64;
        let (orders, cancellations) = (count(state.orders), count(state.cancellations));
        vec![
            Value::Count(orders),
            Value::Money(state.gross_minor),
            Value::Count(cancellations),
            Value::Money(state.reversed_minor),
            Value::Money(state.gross_minor - state.reversed_minor),
            ratio(cancellations, orders),
        ]
    }
}

/// Name, dimensions and values of a metric, for catalogues such as `GET /v1/metrics`.
#[derive(Debug, Clone, Serialize)]
pub struct MetricInfo {
    pub name: &'static str,
    pub dimensions: &'static [&'static str],
    pub values: &'static [(&'static str, ValueKind)],
}

fn info<M: Metric>() -> MetricInfo {
    MetricInfo {
        name: M::NAME,
        dimensions: M::DIMENSIONS,
        values: M::VALUES,
    }
}

/// Every metric the platform computes.
pub fn catalog() -> Vec<MetricInfo> {
    vec![
        info::<PageViews>(),
        info::<Funnel>(),
        info::<Revenue>(),
        info::<Sessions>(),
        info::<Orders>(),
    ]
}
