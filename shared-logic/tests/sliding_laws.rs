//! Sliding windows assembled from panes (`MetricViews::slide`) equal the fold of every
//! event straight into the overlapping windows (`WindowSpec::Sliding`), for every metric
//! built from events: the claim `shared_logic::sliding` rests on.

use proptest::prelude::*;
use shared_logic::generate::{Generator, GeneratorConfig};
use shared_logic::sliding::SlidingWindow;
use shared_logic::window::{WindowSpec, DAY_MS};
use shared_logic::{Aggregates, MetricContext, Origin, Validator};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]
    #[test]
    fn assembled_panes_equal_the_direct_sliding_fold(seed in 0u64..1_000, k in 2i64..8, slide_minutes in 1i64..4) {
        let cfg = GeneratorConfig {
            seed,
            events_per_second: 2.0,
            ..GeneratorConfig::default()
        };
        let now = cfg.start_ms + DAY_MS;
        let events: Vec<_> = Generator::new(cfg)
            .take(1_500)
            .filter_map(|r| {
                Validator::default()
                    .validate(&r.json, Origin::import_line(0), now)
                    .ok()
            })
            .collect();
        let window =
            SlidingWindow::new(k * slide_minutes * 60_000, slide_minutes * 60_000, 60_000).unwrap();
        let panes = Aggregates::fold(&events, &MetricContext::default());
        let direct = Aggregates::fold(&events, &MetricContext {
            windows: WindowSpec::sliding(window.size_ms, window.slide_ms).unwrap(),
            ..MetricContext::default()
        });
        prop_assert!(!direct.page_views.is_empty());
        prop_assert_eq!(panes.page_views.slide(window), direct.page_views);
        prop_assert_eq!(panes.funnel.slide(window), direct.funnel);
        prop_assert_eq!(panes.revenue.slide(window), direct.revenue);
    }
}
