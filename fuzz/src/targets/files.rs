//! File targets: a metric's Parquet views file (what the batch layer publishes and a speed
//! instance answers over HTTP) and a speed checkpoint, both read back as the platform
//! reads them. What is accepted must survive a write and a second read unchanged.

use std::cell::RefCell;

use lambda_io::views_file::{encode_views, merge_views_file};
use lambda_io::Lake;
use shared_logic::{
    Funnel, Metric, MetricContext, MetricViews, Orders, PageViews, Revenue, Sessions,
};
use speed::checkpoint::CheckpointStore;
use speed::partition::PartitionState;

use super::{Outcome, Target};

/// Parquet views files, read as each metric's.
pub const VIEWS: Target = Target {
    name: "views",
    about: "Parquet views files read back as each metric's views",
    json: false,
    words: &[
        "PAR1",
        "\u{0}\u{0}\u{0}\u{0}",
        "\u{7f}\u{ff}\u{ff}\u{ff}",
        "\u{ff}\u{ff}\u{ff}\u{ff}",
    ],
    values: &[],
    max_len: 1 << 20,
    run: views,
};

fn views(input: &[u8]) -> Outcome {
    let ctx = MetricContext::default();
    let mut outcome = String::new();
    for result in [
        round_trip::<PageViews>(input, &ctx),
        round_trip::<Revenue>(input, &ctx),
        round_trip::<Funnel>(input, &ctx),
        round_trip::<Sessions>(input, &ctx),
        round_trip::<Orders>(input, &ctx),
    ] {
        outcome.push_str(result);
        outcome.push(';');
    }
    outcome
}

/// Reads `input` as `M`'s views; what is accepted is written and read again, unchanged.
fn round_trip<M: Metric>(input: &[u8], ctx: &MetricContext) -> &'static str {
    let mut views = MetricViews::<M>::default();
    if merge_views_file(&mut views, bytes::Bytes::copy_from_slice(input), "fuzz").is_err() {
        return "refused";
    }
    let bytes = encode_views(&views, &ctx.windows, "fuzz").expect("accepted views encode");
    let mut back = MetricViews::<M>::default();
    merge_views_file(&mut back, bytes.into(), "fuzz").expect("written views read back");
    assert!(
        back == views,
        "{} views changed through a write and a read",
        M::NAME
    );
    "ok"
}

/// Speed checkpoints: the base object (`<group>/<topic>/p<partition>/<n>.base`) a valid
/// manifest names.
pub const CHECKPOINT: Target = Target {
    name: "checkpoint",
    about: "speed checkpoint files loaded from a lake",
    json: false,
    words: &[
        "\u{0}",
        "\u{1}",
        "\u{ff}\u{ff}\u{ff}\u{ff}\u{f}",
        "\u{80}\u{80}\u{80}\u{80}\u{80}\u{80}\u{80}\u{80}\u{80}\u{1}",
    ],
    values: &[],
    max_len: 1 << 20,
    run: checkpoint,
};

/// A lake in a temporary directory and a runtime for its async API, per thread.
struct Scratch {
    _dir: tempfile::TempDir,
    lake: Lake,
    runtime: tokio::runtime::Runtime,
}

thread_local! {
    static SCRATCH: RefCell<Option<Scratch>> = const { RefCell::new(None) };
}

fn checkpoint(input: &[u8]) -> Outcome {
    SCRATCH.with(|cell| {
        let mut cell = cell.borrow_mut();
        let scratch = cell.get_or_insert_with(|| {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let lake = Lake::open(dir.path().to_str().expect("UTF-8 path"), true).expect("lake");
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            Scratch {
                _dir: dir,
                lake,
                runtime,
            }
        });
        let ctx = MetricContext::default();
        let root = scratch._dir.path().to_path_buf();
        scratch.runtime.block_on(async {
            // A valid manifest naming one base, whose bytes are the input: the base holds the
            // state, the part of a checkpoint that grows with the data.
            let _ = std::fs::remove_dir_all(root.join("g"));
            CheckpointStore::new(scratch.lake.clone(), "g", "t")
                .save(0, &PartitionState::default(), &ctx)
                .await
                .expect("an empty state saves");
            let base = checkpoint_base(&root, 0).expect("a saved checkpoint has a base");
            scratch
                .lake
                .put(
                    &scratch.lake.path(&format!("g/t/p0/{base}")),
                    input.to_vec(),
                )
                .await
                .expect("write the input");
            let store = CheckpointStore::new(scratch.lake.clone(), "g", "t");
            let Ok(Some(state)) = store.load(0, &ctx).await else {
                return "refused".to_string();
            };
            store
                .save(1, &state, &ctx)
                .await
                .expect("an accepted state saves");
            let back = store.load(1, &ctx).await.expect("a saved state loads");
            assert!(
                back.as_ref() == Some(&state),
                "the state changed through a save and a load"
            );
            "ok".to_string()
        })
    })
}

/// The name of the base object of partition `partition`'s checkpoint under `root` (a lake
/// in a local directory, group `g`, topic `t`).
pub fn checkpoint_base(root: &std::path::Path, partition: i32) -> Option<String> {
    std::fs::read_dir(root.join(format!("g/t/p{partition}")))
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|name| name.ends_with(".base"))
}
