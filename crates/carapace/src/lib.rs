//! The `carapace` binary's library: configuration, start-up, the HTTP front and metrics.
//! Split from `main.rs` so integration tests and benchmarks can reuse the pieces.

pub mod app;
pub mod approval;
pub mod bench;
pub mod bench_edge_sync;
pub mod bench_pca;
pub mod bench_scale;
pub mod config;
pub mod logging;
pub mod metrics;
pub mod serve;
pub mod server;
