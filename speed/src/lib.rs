//! Speed layer: turns the live Kafka stream into real-time views.
//!
//! At this stage it owns reading a topic back ([`drain`]): every record from the beginning
//! up to the end the topic had when the read began, each validated through `shared-logic`.
//! The windowed consumer with watermarks, checkpoints and real-time views comes with the
//! speed issue. This crate never restates metric math: it folds with `shared-logic`.

pub mod drain;
pub mod error;
pub mod kafka;
pub mod partition;

pub use error::SpeedError;
