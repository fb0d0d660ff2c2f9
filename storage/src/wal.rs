//! Write-ahead log: append-only segment files that make accepted samples durable before they reach a block.
