//! Property tests for the algebraic claims the Lambda merge rests on: folding any
//! permutation or any split of the same events gives equal state; merge is associative and
//! commutative with the empty state as identity; minute states roll up to exactly what an
//! hourly fold gives; the dedup rule does not depend on arrival order.

use proptest::prelude::*;
use shared_logic::dedup::first_wins;
use shared_logic::window::{HourKey, HOUR_MS};
use shared_logic::{Aggregates, Mergeable};
use shared_logic::{Event, MetricContext, Origin, Validator, WindowSpec};

const BASE_MS: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

/// A small domain, so that keys collide and merges actually combine states.
fn event_strategy() -> impl Strategy<Value = Event> {
    (
        0usize..3,
        0i64..3 * HOUR_MS,
        0u32..40,
        0usize..4,
        0usize..4,
        0usize..4,
        1i64..5,
        0i64..100_000,
        0usize..5,
        0u32..1_000_000,
    )
        .prop_map(|(kind, dt, user, url, country, device, qty, price, cur, id)| {
            let types = ["page_view", "add_to_cart", "purchase"];
            let countries = ["US", "DE", "JP", "GB"];
            let devices = ["mobile", "desktop", "tablet", "other"];
            let currencies = ["USD", "EUR", "GBP", "JPY", "CNY"];
            let categories = ["books", "toys", "home", "unknown"];
            let json = format!(
                r#"{{"event_id":"e{id}","event_type":"{}","event_time":{},"user_id":"u{user}","url":"/p/{url}",
                    "product_id":"p{url}","category":"{}","country":"{}","device":"{}","quantity":{qty},
                    "price":"{}","currency":"{}"}}"#,
                types[kind],
                BASE_MS + dt,
                categories[url],
                countries[country],
                devices[device],
                if cur == 3 { (price / 100).to_string() } else { format!("{}.{:02}", price / 100, price % 100) },
                currencies[cur],
            );
            Validator::default()
                .validate(json.as_bytes(), Origin { partition: (id % 3) as i32, offset: id as i64 }, BASE_MS + 10 * HOUR_MS)
                .expect("generated events are valid")
        })
}

fn contexts() -> impl Strategy<Value = MetricContext> {
    prop_oneof![
        Just(MetricContext::default()),
        Just(MetricContext {
            windows: WindowSpec::sliding(300_000, 60_000).unwrap(),
            ..MetricContext::default()
        }),
    ]
}

fn fold(events: &[Event], ctx: &MetricContext) -> Aggregates {
    Aggregates::fold(events, ctx)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_permutation_folds_to_equal_state(
        events in proptest::collection::vec(event_strategy(), 0..200),
        ctx in contexts(),
        seed in any::<u64>(),
    ) {
        let mut shuffled = events.clone();
        // Fisher-Yates with a seeded LCG: a permutation chosen by proptest's seed.
        let mut s = seed | 1;
        for i in (1..shuffled.len()).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.swap(i, (s >> 33) as usize % (i + 1));
        }
        prop_assert_eq!(fold(&events, &ctx), fold(&shuffled, &ctx));
    }

    #[test]
    fn any_split_folded_then_merged_equals_one_fold(
        events in proptest::collection::vec(event_strategy(), 0..200),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
        ctx in contexts(),
    ) {
        let mut bounds: Vec<usize> = cuts.iter().map(|c| c.index(events.len() + 1)).collect();
        bounds.extend([0, events.len()]);
        bounds.sort_unstable();
        let mut merged = Aggregates::default();
        for w in bounds.windows(2) {
            merged.merge(&fold(&events[w[0]..w[1]], &ctx));
        }
        // Sessions are a function of each user's events together: an arbitrary split cuts
        // sessions (the next law splits by user, as partitions and batch buckets do).
        let mut one = fold(&events, &ctx);
        merged.sessions = Default::default();
        one.sessions = Default::default();
        prop_assert_eq!(merged, one);
    }

    #[test]
    fn any_split_by_user_folded_then_merged_equals_one_fold_sessions_included(
        events in proptest::collection::vec(event_strategy(), 0..200),
        parts in 1u64..5,
        ctx in contexts(),
    ) {
        let mut merged = Aggregates::default();
        for part in 0..parts {
            let mine: Vec<Event> = events
                .iter()
                .filter(|e| xxhash_rust::xxh3::xxh3_64(e.user_id().as_bytes()) % parts == part)
                .cloned()
                .collect();
            merged.merge(&fold(&mine, &ctx));
        }
        prop_assert_eq!(merged, fold(&events, &ctx));
    }

    #[test]
    fn merge_is_associative_and_commutative_with_identity(
        a in proptest::collection::vec(event_strategy(), 0..80),
        b in proptest::collection::vec(event_strategy(), 0..80),
        c in proptest::collection::vec(event_strategy(), 0..80),
    ) {
        let ctx = MetricContext::default();
        let (a, b, c) = (fold(&a, &ctx), fold(&b, &ctx), fold(&c, &ctx));

        shared_logic::mergeable::check_laws(&a, &b, &c).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn minute_states_roll_up_to_the_hourly_fold(events in proptest::collection::vec(event_strategy(), 0..200)) {
        let minutes = fold(&events, &MetricContext::default());
        let hourly_ctx = MetricContext { windows: WindowSpec::tumbling(HOUR_MS).unwrap(), ..MetricContext::default() };
        let rolled = minutes.roll_up(HOUR_MS);
        prop_assert_eq!(rolled, fold(&events, &hourly_ctx));
    }

    #[test]
    fn dedup_winner_does_not_depend_on_arrival_order(
        events in proptest::collection::vec(event_strategy(), 0..150),
        redeliveries in proptest::collection::vec((any::<prop::sample::Index>(), 0i32..3, Just(())), 0..60),
    ) {
        // One record per position: the originals have distinct positions, and each
        // redelivery gets a position of its own.
        let mut positions = std::collections::HashSet::new();
        let events: Vec<Event> = events.into_iter().filter(|e| positions.insert(e.origin())).collect();
        let mut stream = events.clone();
        for (n, (i, p, _)) in redeliveries.into_iter().enumerate() {
            if !events.is_empty() {
                let origin = Origin { partition: p, offset: 2_000_000 + n as i64 };
                stream.push(events[i.index(events.len())].clone().with_origin(origin));
            }
        }
        let forward = first_wins(stream.clone());
        stream.reverse();
        let backward = first_wins(stream);
        prop_assert_eq!(&forward, &backward);
        let ids: std::collections::HashSet<_> =
            events.iter().map(|e| (e.event_id().clone(), HourKey::of(e.event_time()))).collect();
        prop_assert_eq!(forward.len(), ids.len());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn owned_merge_equals_borrowed_merge(
        a in proptest::collection::vec(event_strategy(), 0..120),
        b in proptest::collection::vec(event_strategy(), 0..120),
    ) {
        let ctx = MetricContext::default();
        let (a, b) = (fold(&a, &ctx), fold(&b, &ctx));
        let mut borrowed = a.clone();
        borrowed.merge(&b);
        let mut owned = a.clone();
        owned.merge_owned(b.clone());
        prop_assert_eq!(&owned, &borrowed);
        let mut other_way = b;
        other_way.merge_owned(a);
        prop_assert_eq!(other_way, borrowed);
    }
}

/// Sums at the edges of their types: counts near `u64::MAX`, signed sums anywhere in `i128`
/// (only a corrupt file gets there; issue 16).
fn extreme_u64() -> impl Strategy<Value = u64> {
    prop_oneof![any::<u64>(), (0u64..4).prop_map(|d| u64::MAX - d), 0u64..4]
}

fn extreme_i128() -> impl Strategy<Value = i128> {
    prop_oneof![
        any::<i128>(),
        (0i128..4).prop_map(|d| i128::MAX - d),
        (0i128..4).prop_map(|d| i128::MIN + d),
        any::<i64>().prop_map(i128::from),
    ]
}

fn revenue_state() -> impl Strategy<Value = shared_logic::metrics::RevenueState> {
    (extreme_u64(), extreme_u64(), extreme_i128()).prop_map(|(orders, items, revenue_minor)| {
        shared_logic::metrics::RevenueState {
            orders,
            items,
            revenue_minor,
            ..Default::default()
        }
    })
}

fn funnel_state() -> impl Strategy<Value = shared_logic::metrics::FunnelState> {
    (extreme_u64(), extreme_u64(), extreme_u64()).prop_map(|(views, carts, purchases)| {
        shared_logic::metrics::FunnelState {
            views,
            carts,
            purchases,
            ..Default::default()
        }
    })
}

fn sessions_state() -> impl Strategy<Value = shared_logic::metrics::SessionsState> {
    (
        extreme_i128(),
        extreme_i128(),
        extreme_i128(),
        extreme_i128(),
    )
        .prop_map(|(sessions, duration_ms, page_views, bounces)| {
            shared_logic::metrics::SessionsState {
                sessions,
                duration_ms,
                page_views,
                bounces,
            }
        })
}

fn orders_state() -> impl Strategy<Value = shared_logic::metrics::OrdersState> {
    (
        extreme_i128(),
        extreme_i128(),
        extreme_i128(),
        extreme_i128(),
    )
        .prop_map(|(orders, gross_minor, cancellations, reversed_minor)| {
            shared_logic::metrics::OrdersState {
                orders,
                gross_minor,
                cancellations,
                reversed_minor,
            }
        })
}

/// The monoid laws for three states, and that merging and evaluating never panic.
fn laws<M: shared_logic::Metric>(
    a: &M::State,
    b: &M::State,
    c: &M::State,
) -> Result<(), TestCaseError> {
    let mut ab_c = a.clone();
    ab_c.merge(b);
    ab_c.merge(c);
    let mut bc = b.clone();
    bc.merge(c);
    let mut a_bc = a.clone();
    a_bc.merge(&bc);
    prop_assert_eq!(&ab_c, &a_bc);
    let mut ab = a.clone();
    ab.merge(b);
    let mut ba = b.clone();
    ba.merge(a);
    prop_assert_eq!(&ab, &ba);
    let mut a0 = a.clone();
    a0.merge(&M::State::default());
    prop_assert_eq!(&a0, a);
    let _ = M::values(&ab_c);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn merges_at_the_extremes_never_panic_and_keep_the_laws(
        r in proptest::collection::vec(revenue_state(), 3),
        f in proptest::collection::vec(funnel_state(), 3),
        s in proptest::collection::vec(sessions_state(), 3),
        o in proptest::collection::vec(orders_state(), 3),
        views in extreme_u64(),
    ) {
        use shared_logic::metrics::{Funnel, Orders, PageViews, Revenue, Sessions};
        laws::<Revenue>(&r[0], &r[1], &r[2])?;
        laws::<Funnel>(&f[0], &f[1], &f[2])?;
        laws::<Sessions>(&s[0], &s[1], &s[2])?;
        laws::<Orders>(&o[0], &o[1], &o[2])?;
        let pv = |views| shared_logic::metrics::PageViewsState { views, ..Default::default() };
        laws::<PageViews>(&pv(views), &pv(u64::MAX), &pv(1))?;
        // Counts saturate: nothing wraps back to small numbers.
        let mut top = pv(u64::MAX);
        top.merge(&pv(views));
        prop_assert_eq!(top.views, u64::MAX);
    }
}
