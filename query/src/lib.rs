//! eddy-query: PromQL for eddy — a nom parser, the AST, and an evaluator with Prometheus's
//! exact semantics, reading series through `eddy_storage::Querier`.
//!
//! Module map:
//! - [`ast`]: the syntax tree.
//! - [`parser`]: PromQL text → [`ast::Expr`], with Prometheus-style errors.

#![warn(missing_docs)]

pub mod ast;
pub mod parser;
