//! Batch layer.
