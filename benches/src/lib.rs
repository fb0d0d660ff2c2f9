//! Flink-shaped workload generation and the benchmarks built on it: an in-process storage
//! benchmark, a remote_write request generator and sender, and a PromQL query runner used by
//! `benches/compare.sh` to compare eddy with VictoriaMetrics and Prometheus.
//!
//! Modules: [`flink`] (the workload), [`storage_bench`], [`requests`] (the pre-encoded request
//! file that `gen` writes and `send` replays), [`queries`] (query files, result hashing),
//! [`http`] (a tiny keep-alive HTTP/1.1 client), [`args`] (command-line options),
//! [`alloc_count`] (an allocation-counting global allocator).

pub mod alloc_count;
pub mod args;
pub mod flink;
pub mod http;
pub mod queries;
pub mod requests;
pub mod storage_bench;
