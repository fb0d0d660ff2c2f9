//! Flink-shaped workload generation shared by eddy's benchmarks.
