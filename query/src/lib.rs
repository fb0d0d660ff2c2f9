//! eddy-query: PromQL for eddy — a nom parser, the AST, and an evaluator with Prometheus's
//! exact semantics, reading series through `eddy_storage::Querier`.
//!
//! Module map:
//! - [`ast`]: the syntax tree.
//! - [`parser`]: PromQL text → [`ast::Expr`], with Prometheus-style errors.
//! - [`engine`]: the evaluator ([`engine::Engine`]).
//! - [`functions`]: PromQL functions.
//! - [`value`]: query results and errors.
//! - [`promqltest`]: runner for Prometheus's `.test` files.

#![warn(missing_docs)]

pub mod ast;
pub mod engine;
pub mod format;
pub mod functions;
pub mod parser;
pub mod promqltest;
pub mod value;
