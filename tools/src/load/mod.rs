//! `lambda bench ingest` and `lambda bench query`: HTTP load generators for a running
//! `lambda serve`, to measure the collector (`POST /v1/events`) and the query API.
//!
//! Both run their own tokio runtime and a `reqwest` client with a fixed number of
//! connections, and compute quantiles from the sorted latencies of every request (no
//! histogram approximation). They only generate load and count answers: what the server
//! does with the events or how it answers a query is the serving crate's business.
//!
//! The open-loop query mode schedules request `i` at `start + i / rate` from a dedicated
//! thread and measures its latency from that scheduled time, so a slow answer that delays
//! the following requests shows up in their latency instead of silently lowering the rate
//! (coordinated omission); the service time (from the moment the request is sent) is
//! reported beside it.

mod ingest;
mod query;
mod stats;
#[cfg(test)]
mod tests;

pub use ingest::{ingest, IngestArgs};
pub use query::{query, QueryArgs};
