//! The metric registry: the one list of every metric the platform computes, and the one
//! dispatch from a metric (by name, or all of them) to code that is generic over it.
//!
//! A new metric is written in [`crate::metrics`] and added to the list at the bottom of
//! this file; from there it is in [`Aggregates`] (so both layers fold, merge, evict and
//! checkpoint it), in [`catalog`] and [`NAMES`] (the API's catalogue, its OpenAPI document,
//! `lambda verify`), and every layer reaches it through [`dispatch`] or [`visit_all`] with
//! a [`MetricVisitor`]: batch writes its view, speed serves it, serving answers it. No other
//! crate lists metrics.
//!
//! Metrics built from events ([`BuiltFrom::Events`]) are folded event by event by
//! [`Aggregates::update`]; `sessions`, `orders` and `daily_sales` are built from sessions and order deltas
//! by paths of their own and are skipped by the per-event fold.

use hashbrown::HashMap;
use serde::{Deserialize, Serialize};

use crate::event::{Event, EventRef};
use crate::mergeable::Mergeable;
use crate::metric::{info, BuiltFrom, Metric, MetricContext, MetricInfo};
use crate::metric_views::MetricViews;
use crate::metrics::{DailySales, Funnel, Orders, PageViews, Quality, Revenue, Sessions};
use crate::sessions::{Activity, UserSessions};
use crate::window::WindowStart;

/// A metric of the registry: where its views sit in [`Aggregates`]. Implemented for every
/// listed metric by the registry itself.
pub trait Registered: Metric + Sized {
    /// This metric in [`MetricId`] form.
    const ID: MetricId;
    /// This metric's views within a fold of every metric.
    fn views_in(aggregates: &Aggregates) -> &MetricViews<Self>;
    /// The same, mutable (to take a metric's views out of a fold).
    fn views_in_mut(aggregates: &mut Aggregates) -> &mut MetricViews<Self>;
}

/// Code that is generic over a metric, run for the metric(s) [`dispatch`] or [`visit_all`]
/// select.
pub trait MetricVisitor {
    type Output;
    /// Runs for metric `M`.
    fn visit<M: Registered>(self) -> Self::Output;
}

macro_rules! registry {
    ($($field:ident: $metric:ident),* $(,)?) => {
        /// The states of every metric: what one fold over some events produces.
        #[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
        pub struct Aggregates {
            $(
                #[serde(default)]
                pub $field: MetricViews<$metric>,
            )*
        }

        $(
            impl Registered for $metric {
                const ID: MetricId = MetricId::$metric;
                fn views_in(aggregates: &Aggregates) -> &MetricViews<Self> {
                    &aggregates.$field
                }
                fn views_in_mut(aggregates: &mut Aggregates) -> &mut MetricViews<Self> {
                    &mut aggregates.$field
                }
            }
        )*

        /// Every metric's name, in catalogue order.
        pub const NAMES: &[&str] = &[$(<$metric as Metric>::NAME),*];

        /// A metric of the registry chosen at run time (from a name in a request, a flag or
        /// a file); [`MetricId::visit`] turns it back into the metric's type.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum MetricId {
            $($metric,)*
        }

        impl MetricId {
            /// Every metric, in catalogue order.
            pub const ALL: &'static [MetricId] = &[$(MetricId::$metric),*];

            /// The metric's name (in the API, view paths and files).
            pub fn name(self) -> &'static str {
                match self {
                    $(MetricId::$metric => <$metric as Metric>::NAME,)*
                }
            }

            /// The metric's dimensions, in key order.
            pub fn dimensions(self) -> &'static [&'static str] {
                match self {
                    $(MetricId::$metric => <$metric as Metric>::DIMENSIONS,)*
                }
            }

            /// What the metric's states are built from.
            pub fn built_from(self) -> BuiltFrom {
                match self {
                    $(MetricId::$metric => <$metric as Metric>::BUILT_FROM,)*
                }
            }

            /// Runs `visitor` for this metric.
            pub fn visit<V: MetricVisitor>(self, visitor: V) -> V::Output {
                match self {
                    $(MetricId::$metric => visitor.visit::<$metric>(),)*
                }
            }
        }

        /// Runs `visitor` for every metric, in catalogue order.
        pub fn visit_all<V: MetricVisitor + Clone>(visitor: V) -> Vec<V::Output> {
            vec![$(visitor.clone().visit::<$metric>()),*]
        }

        /// Name, dimensions and values of every metric the platform computes.
        pub fn catalog() -> Vec<MetricInfo> {
            vec![$(info::<$metric>()),*]
        }

        impl Aggregates {
            /// Folds one (already deduplicated) event into those of its windows where
            /// `accept` holds, in every per-event metric.
            pub fn update_windows(
                &mut self,
                event: &EventRef<'_>,
                ctx: &MetricContext,
                accept: impl Fn(WindowStart) -> bool,
            ) {
                $(
                    if matches!(<$metric as Metric>::BUILT_FROM, BuiltFrom::Events) {
                        self.$field.update_windows(event, ctx, &accept);
                    }
                )*
            }

            /// Notes a duplicate delivery of `event` (dropped by the layer's dedup rule) in
            /// those of its windows where `accept` holds, in every metric that counts them.
            pub fn note_duplicate_windows(
                &mut self,
                event: &EventRef<'_>,
                ctx: &MetricContext,
                accept: impl Fn(WindowStart) -> bool,
            ) {
                $(
                    if <$metric as Metric>::NOTES_DUPLICATES {
                        self.$field.note_duplicate_windows(event, ctx, &accept);
                    }
                )*
            }

            /// Notes a record rejected for `reason`, from `source`, with Kafka record time
            /// `record_ms`, in every metric that counts rejects.
            pub fn note_reject(
                &mut self,
                source: &str,
                reason: crate::validate::Reason,
                record_ms: i64,
                ctx: &MetricContext,
            ) {
                $(
                    if <$metric as Metric>::NOTES_REJECTS {
                        self.$field.note_reject_windows(source, reason, record_ms, ctx);
                    }
                )*
            }

            /// Folds one (already deduplicated) event into every per-event metric.
            pub fn update(&mut self, event: &EventRef<'_>, ctx: &MetricContext) {
                $(
                    if matches!(<$metric as Metric>::BUILT_FROM, BuiltFrom::Events) {
                        self.$field.update(event, ctx);
                    }
                )*
            }

            /// Total number of keys across metrics.
            pub fn len(&self) -> usize {
                0 $(+ self.$field.len())*
            }

            /// Every metric rolled up into windows of `size_ms`.
            pub fn roll_up(&self, size_ms: i64) -> Self {
                Aggregates {
                    $($field: self.$field.roll_up(size_ms),)*
                }
            }

            /// Keeps only windows for which `keep` holds, in every metric.
            pub fn retain_windows(&mut self, mut keep: impl FnMut(WindowStart) -> bool) {
                $(self.$field.retain(|k| keep(k.window));)*
            }

            /// Keeps only windows for which `keep` holds, in the metrics built from `built`
            /// (eviction is per kind: sessions trail the per-event metrics).
            pub fn retain_windows_of(
                &mut self,
                built: BuiltFrom,
                mut keep: impl FnMut(WindowStart) -> bool,
            ) {
                $(
                    if <$metric as Metric>::BUILT_FROM == built {
                        self.$field.retain(|k| keep(k.window));
                    }
                )*
            }

            /// [`Mergeable::merge`] consuming `other` (no clones).
            pub fn merge_owned(&mut self, other: Aggregates) {
                $(self.$field.merge_owned(other.$field);)*
            }
        }

        impl Mergeable for Aggregates {
            fn merge(&mut self, other: &Self) {
                $(self.$field.merge(&other.$field);)*
            }
        }
    };
}

impl MetricId {
    /// The metric called `name`, if there is one.
    pub fn of(name: &str) -> Option<MetricId> {
        MetricId::ALL.iter().copied().find(|m| m.name() == name)
    }

    /// Whether `name` is a metric built from `built`.
    pub fn is_built_from(name: &str, built: BuiltFrom) -> bool {
        MetricId::of(name).is_some_and(|m| m.built_from() == built)
    }
}

/// Runs `visitor` for the metric called `name`; `None` when there is no such metric.
pub fn dispatch<V: MetricVisitor>(name: &str, visitor: V) -> Option<V::Output> {
    MetricId::of(name).map(|m| m.visit(visitor))
}

impl Aggregates {
    /// The direct computation over deliveries: the dedup rule ([`crate::dedup`]) keeps one
    /// delivery per event, the winners are folded ([`Aggregates::fold`]) and the losers
    /// noted as duplicates: what both layers compute from the same records.
    pub fn fold_deliveries(events: impl IntoIterator<Item = Event>, ctx: &MetricContext) -> Self {
        let (winners, duplicates) = crate::dedup::split_duplicates(events);
        let mut agg = Aggregates::fold(&winners, ctx);
        for d in &duplicates {
            agg.note_duplicate_windows(&d.view(), ctx, |_| true);
        }
        agg
    }

    /// True when no metric holds state.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The views of metric `M`.
    pub fn views<M: Registered>(&self) -> &MetricViews<M> {
        M::views_in(self)
    }

    /// Folds many (deduplicated) events into every metric, sessions included (each user's
    /// events sessionized, each session in the windows of its start).
    pub fn fold<'a>(events: impl IntoIterator<Item = &'a Event>, ctx: &MetricContext) -> Self {
        let mut agg = Aggregates::default();
        let mut users: HashMap<&str, UserSessions> = HashMap::new();
        for e in events {
            let view = e.view();
            agg.update(&view, ctx);
            users
                .entry(e.user_id())
                .or_default()
                .insert(&Activity::of(&view), ctx.session_gap_ms);
        }
        for sessions in users.values() {
            for s in sessions.sessions() {
                agg.sessions.apply_session(s, 1, ctx);
            }
        }
        agg
    }
}

// The list. Field order is the order of the serialised form (checkpoints): append new
// metrics at the end.
registry! {
    page_views: PageViews,
    funnel: Funnel,
    revenue: Revenue,
    sessions: Sessions,
    orders: Orders,
    daily_sales: DailySales,
    quality: Quality,
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Name;

    impl MetricVisitor for Name {
        type Output = &'static str;
        fn visit<M: Registered>(self) -> &'static str {
            M::NAME
        }
    }

    #[test]
    fn dispatch_finds_every_listed_metric_and_nothing_else() {
        for name in NAMES {
            assert_eq!(dispatch(name, Name), Some(*name));
        }
        assert_eq!(dispatch("nope", Name), None);
        for id in MetricId::ALL {
            assert_eq!(MetricId::of(id.name()), Some(*id));
            assert_eq!(id.visit(Name), id.name());
        }
        assert_eq!(
            catalog().iter().map(|m| m.name).collect::<Vec<_>>(),
            NAMES.to_vec()
        );
    }
}
