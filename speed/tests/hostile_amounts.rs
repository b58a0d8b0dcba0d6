//! Issue 16: three purchases of 90 000 000 000 GBP × 1 000 000 each, accepted by
//! validation, made the speed layer's revenue fold panic with `attempt to add with
//! overflow` (and restart into the same record forever). Through the partition's record
//! path: validation now dead-letters them with a reason, and a fold of amounts past the
//! limit still cannot overflow.

use shared_logic::metric::Value;
use shared_logic::metrics::Revenue;
use shared_logic::{Metric, MetricContext, Reason, Validator};
use speed::partition::{Outcome, PartitionState, TimeSettings};

const T: i64 = 1_772_366_400_000; // 2026-03-01T12:00:00Z

fn purchase(id: &str) -> Vec<u8> {
    format!(
        r#"{{"event_id":"{id}","event_type":"purchase","event_time":{T},"user_id":"u-{id}","product_id":"p1","category":"toys","country":"GB","quantity":1000000,"price":"90000000000","currency":"GBP"}}"#
    )
    .into_bytes()
}

fn apply_three(validator: &Validator) -> (PartitionState, Vec<Outcome>) {
    let (ctx, time) = (MetricContext::default(), TimeSettings::default());
    let mut state = PartitionState::default();
    let outcomes = ["h1", "h2", "h3"]
        .iter()
        .enumerate()
        .map(|(i, id)| {
            state.apply(
                shared_logic::topics::EVENTS,
                0,
                i as i64,
                &purchase(id),
                validator,
                Some(T),
                &ctx,
                &time,
            )
        })
        .collect();
    (state, outcomes)
}

#[test]
fn huge_purchases_are_dead_lettered_not_a_crash() {
    let (state, outcomes) = apply_three(&Validator::default());
    for outcome in outcomes {
        match outcome {
            Outcome::Rejected(dead) => assert_eq!(dead.reason, Reason::AmountOutOfRange),
            other => panic!("expected amount_out_of_range, got {other:?}"),
        }
    }
    assert_eq!(state.counters.rejected, 3);
    assert!(state.aggregates.revenue.is_empty());
}

#[test]
fn amounts_past_the_limit_still_fold_exactly() {
    let lax = Validator {
        max_amount_minor: i64::MAX,
        ..Validator::default()
    };
    let (state, outcomes) = apply_three(&lax);
    assert!(
        outcomes.iter().all(|o| *o == Outcome::Counted),
        "{outcomes:?}"
    );
    let (_, revenue) = state.aggregates.revenue.iter().next().unwrap();
    // 9 × 10^18 pence at 1.265 USD per GBP, three times: exact in the state, clamped
    // (never wrapped negative) in the view column.
    assert_eq!(revenue.revenue_minor, 3 * 11_385_000_000_000_000_000);
    assert_eq!(Revenue::values(revenue)[2], Value::Money(i64::MAX));
}
