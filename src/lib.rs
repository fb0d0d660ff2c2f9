//! The eddy server as a library: configuration, the HTTP routes (ingest, query API, admin,
//! own metrics) and the `serve` loop. `src/main.rs` is the command line around it; tests build
//! the router with [`http::app`] and call it without a socket.

pub mod allocator;
pub mod cli_query;
pub mod config;
pub mod http;
pub mod import;
pub mod metadata;
pub mod metrics;
pub mod promqltest;
pub mod server;
