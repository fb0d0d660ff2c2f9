//! PromQL parser (nom 8): text to `ast::Expr`, with type checking and positioned errors.
