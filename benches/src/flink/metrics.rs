//! The metric catalog of the workload: which series a TaskManager, a running subtask and an
//! operator instance expose (names as Flink's Prometheus reporter writes them, FLINK.md §1.3),
//! and how each one's value behaves over time.

/// How a series' value evolves from scrape to scrape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Kind {
    /// Monotonic integer count growing by about `scale` per second (log-spread per series);
    /// task and operator counters restart from 0 on every job restart.
    Counter(f64),
    /// A Flink `MeterView` rate: a 60 s moving average of a count, so an integer divided by 60
    /// (`840.2166666666667`). `scale` as for `Counter`.
    Meter(f64),
    /// A ratio in [0, 1) formed as n/d with a small d, as the JVM's CPU load (`0.021164021164021163`).
    Fraction,
    /// Integer milliseconds per second in [0, 1000], noisy around a per-series level.
    MsPerSecond,
    /// Integer byte count wandering around `base` (per-series spread), in steps of 8.
    Bytes(f64),
    /// An integer that stays at a per-series level and moves by ±1 on a few scrapes.
    NearConst(f64),
    /// Always this value.
    Const(f64),
    /// An event-time watermark (epoch ms a little behind the scrape), `Long.MIN_VALUE` right
    /// after a restart until the first watermark arrives.
    Watermark,
    /// A small integer latency quantile (ms), as `mailboxLatencyMs{quantile=…}`.
    Quantile(f64),
    /// 0 or 1, mostly 0.
    Flag,
}

/// One metric family: full Prometheus name, behaviour, and an optional extra label.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MetricDef {
    pub(crate) name: &'static str,
    pub(crate) kind: Kind,
    pub(crate) extra: Option<(&'static str, &'static str)>,
}

const fn m(name: &'static str, kind: Kind) -> MetricDef {
    MetricDef {
        name,
        kind,
        extra: None,
    }
}

const fn mx(name: &'static str, kind: Kind, label: &'static str, value: &'static str) -> MetricDef {
    MetricDef {
        name,
        kind,
        extra: Some((label, value)),
    }
}

use Kind::*;

/// TaskManager process metrics (labels host, tm_id): 40 series.
#[rustfmt::skip]
pub(crate) const TM: &[MetricDef] = &[
    m("flink_taskmanager_Status_JVM_CPU_Load", Fraction),
    m("flink_taskmanager_Status_JVM_CPU_Time", Counter(2.0e8)),
    m("flink_taskmanager_Status_JVM_ClassLoader_ClassesLoaded", NearConst(9500.0)),
    m("flink_taskmanager_Status_JVM_ClassLoader_ClassesUnloaded", Const(0.0)),
    m("flink_taskmanager_Status_JVM_FileDescriptor_Open", NearConst(310.0)),
    m("flink_taskmanager_Status_JVM_FileDescriptor_Max", Const(1048576.0)),
    m("flink_taskmanager_Status_JVM_GarbageCollector_All_Count", Counter(0.5)),
    m("flink_taskmanager_Status_JVM_GarbageCollector_All_Time", Counter(8.0)),
    m("flink_taskmanager_Status_JVM_GarbageCollector_All_TimeMsPerSecond", Meter(8.0)),
    m("flink_taskmanager_Status_JVM_GarbageCollector_G1_Young_Generation_Count", Counter(0.5)),
    m("flink_taskmanager_Status_JVM_GarbageCollector_G1_Young_Generation_Time", Counter(8.0)),
    m("flink_taskmanager_Status_JVM_GarbageCollector_G1_Young_Generation_TimeMsPerSecond", Meter(8.0)),
    m("flink_taskmanager_Status_JVM_GarbageCollector_G1_Old_Generation_Count", Const(0.0)),
    m("flink_taskmanager_Status_JVM_GarbageCollector_G1_Old_Generation_Time", Const(0.0)),
    m("flink_taskmanager_Status_JVM_GarbageCollector_G1_Old_Generation_TimeMsPerSecond", Const(0.0)),
    m("flink_taskmanager_Status_JVM_Memory_Heap_Used", Bytes(4.0e8)),
    m("flink_taskmanager_Status_JVM_Memory_Heap_Committed", NearConst(1.07e9)),
    m("flink_taskmanager_Status_JVM_Memory_Heap_Max", Const(1.073741824e9)),
    m("flink_taskmanager_Status_JVM_Memory_NonHeap_Used", Bytes(8.3e7)),
    m("flink_taskmanager_Status_JVM_Memory_NonHeap_Committed", NearConst(8.6e7)),
    m("flink_taskmanager_Status_JVM_Memory_NonHeap_Max", Const(7.80140544e8)),
    m("flink_taskmanager_Status_JVM_Memory_Metaspace_Used", NearConst(6.1e7)),
    m("flink_taskmanager_Status_JVM_Memory_Metaspace_Committed", NearConst(6.2e7)),
    m("flink_taskmanager_Status_JVM_Memory_Metaspace_Max", Const(2.68435456e8)),
    m("flink_taskmanager_Status_JVM_Memory_Direct_Count", NearConst(120.0)),
    m("flink_taskmanager_Status_JVM_Memory_Direct_MemoryUsed", NearConst(1.3e8)),
    m("flink_taskmanager_Status_JVM_Memory_Direct_TotalCapacity", NearConst(1.3e8)),
    m("flink_taskmanager_Status_JVM_Memory_Mapped_Count", Const(0.0)),
    m("flink_taskmanager_Status_JVM_Memory_Mapped_MemoryUsed", Const(0.0)),
    m("flink_taskmanager_Status_JVM_Memory_Mapped_TotalCapacity", Const(0.0)),
    m("flink_taskmanager_Status_JVM_Threads_Count", NearConst(95.0)),
    m("flink_taskmanager_Status_Flink_Memory_Managed_Used", NearConst(3.2e8)),
    m("flink_taskmanager_Status_Flink_Memory_Managed_Total", Const(5.36870912e8)),
    m("flink_taskmanager_Status_Shuffle_Netty_AvailableMemorySegments", NearConst(4000.0)),
    m("flink_taskmanager_Status_Shuffle_Netty_UsedMemorySegments", NearConst(96.0)),
    m("flink_taskmanager_Status_Shuffle_Netty_TotalMemorySegments", Const(4096.0)),
    m("flink_taskmanager_Status_Shuffle_Netty_AvailableMemory", NearConst(1.31e8)),
    m("flink_taskmanager_Status_Shuffle_Netty_UsedMemory", NearConst(3.1e6)),
    m("flink_taskmanager_Status_Shuffle_Netty_TotalMemory", Const(1.34217728e8)),
    m("flink_taskmanager_Status_Shuffle_Netty_RequestedMemoryUsage", Fraction),
];

/// Per running subtask (task scope): 60 series.
#[rustfmt::skip]
pub(crate) const TASK: &[MetricDef] = &[
    m("flink_taskmanager_job_task_numRecordsIn", Counter(2000.0)),
    m("flink_taskmanager_job_task_numRecordsOut", Counter(2000.0)),
    m("flink_taskmanager_job_task_numRecordsInPerSecond", Meter(2000.0)),
    m("flink_taskmanager_job_task_numRecordsOutPerSecond", Meter(2000.0)),
    m("flink_taskmanager_job_task_numBytesIn", Counter(2.0e5)),
    m("flink_taskmanager_job_task_numBytesOut", Counter(2.0e5)),
    m("flink_taskmanager_job_task_numBytesInPerSecond", Meter(2.0e5)),
    m("flink_taskmanager_job_task_numBytesOutPerSecond", Meter(2.0e5)),
    m("flink_taskmanager_job_task_numBuffersOut", Counter(10.0)),
    m("flink_taskmanager_job_task_numBuffersOutPerSecond", Meter(10.0)),
    m("flink_taskmanager_job_task_numBytesInLocal", Counter(5.0e4)),
    m("flink_taskmanager_job_task_numBytesInLocalPerSecond", Meter(5.0e4)),
    m("flink_taskmanager_job_task_numBytesInRemote", Counter(1.5e5)),
    m("flink_taskmanager_job_task_numBytesInRemotePerSecond", Meter(1.5e5)),
    m("flink_taskmanager_job_task_numBuffersInLocal", Counter(3.0)),
    m("flink_taskmanager_job_task_numBuffersInLocalPerSecond", Meter(3.0)),
    m("flink_taskmanager_job_task_numBuffersInRemote", Counter(7.0)),
    m("flink_taskmanager_job_task_numBuffersInRemotePerSecond", Meter(7.0)),
    m("flink_taskmanager_job_task_numFiredTimers", Counter(1.0)),
    m("flink_taskmanager_job_task_numFiredTimersPerSecond", Meter(1.0)),
    m("flink_taskmanager_job_task_busyTimeMsPerSecond", MsPerSecond),
    m("flink_taskmanager_job_task_idleTimeMsPerSecond", MsPerSecond),
    m("flink_taskmanager_job_task_backPressuredTimeMsPerSecond", MsPerSecond),
    m("flink_taskmanager_job_task_softBackPressuredTimeMsPerSecond", MsPerSecond),
    m("flink_taskmanager_job_task_hardBackPressuredTimeMsPerSecond", Const(0.0)),
    m("flink_taskmanager_job_task_maxSoftBackPressureTimeMs", NearConst(20.0)),
    m("flink_taskmanager_job_task_maxHardBackPressureTimeMs", Const(0.0)),
    m("flink_taskmanager_job_task_accumulateBusyTimeMs", Counter(300.0)),
    m("flink_taskmanager_job_task_accumulateIdleTimeMs", Counter(600.0)),
    m("flink_taskmanager_job_task_accumulateBackPressuredTimeMs", Counter(50.0)),
    m("flink_taskmanager_job_task_isBackPressured", Flag),
    m("flink_taskmanager_job_task_changelogBusyTimeMsPerSecond", Const(0.0)),
    m("flink_taskmanager_job_task_mailboxMailsPerSecond", Meter(20.0)),
    m("flink_taskmanager_job_task_mailboxQueueSize", NearConst(0.0)),
    m("flink_taskmanager_job_task_initializationTime", NearConst(850.0)),
    m("flink_taskmanager_job_task_checkpointAlignmentTime", NearConst(0.0)),
    m("flink_taskmanager_job_task_checkpointStartDelayNanos", Bytes(3.0e6)),
    m("flink_taskmanager_job_task_currentInputWatermark", Watermark),
    m("flink_taskmanager_job_task_Shuffle_Netty_Input_Buffers_inputQueueLength", NearConst(0.0)),
    m("flink_taskmanager_job_task_Shuffle_Netty_Input_Buffers_inputQueueSize", NearConst(0.0)),
    m("flink_taskmanager_job_task_Shuffle_Netty_Input_Buffers_inPoolUsage", Fraction),
    m("flink_taskmanager_job_task_Shuffle_Netty_Input_Buffers_inputFloatingBuffersUsage", Fraction),
    m("flink_taskmanager_job_task_Shuffle_Netty_Input_Buffers_inputExclusiveBuffersUsage", Fraction),
    m("flink_taskmanager_job_task_Shuffle_Netty_Output_Buffers_outputQueueLength", NearConst(1.0)),
    m("flink_taskmanager_job_task_Shuffle_Netty_Output_Buffers_outputQueueSize", NearConst(0.0)),
    m("flink_taskmanager_job_task_Shuffle_Netty_Output_Buffers_outPoolUsage", Fraction),
    m("flink_taskmanager_job_task_Shuffle_Netty_Input_numBytesInLocal", Counter(5.0e4)),
    m("flink_taskmanager_job_task_Shuffle_Netty_Input_numBytesInLocalPerSecond", Meter(5.0e4)),
    m("flink_taskmanager_job_task_Shuffle_Netty_Input_numBytesInRemote", Counter(1.5e5)),
    m("flink_taskmanager_job_task_Shuffle_Netty_Input_numBytesInRemotePerSecond", Meter(1.5e5)),
    m("flink_taskmanager_job_task_Shuffle_Netty_Input_numBuffersInLocal", Counter(3.0)),
    m("flink_taskmanager_job_task_Shuffle_Netty_Input_numBuffersInLocalPerSecond", Meter(3.0)),
    m("flink_taskmanager_job_task_Shuffle_Netty_Input_numBuffersInRemote", Counter(7.0)),
    mx("flink_taskmanager_job_task_mailboxLatencyMs", Quantile(0.0), "quantile", "0.5"),
    mx("flink_taskmanager_job_task_mailboxLatencyMs", Quantile(0.0), "quantile", "0.75"),
    mx("flink_taskmanager_job_task_mailboxLatencyMs", Quantile(1.0), "quantile", "0.95"),
    mx("flink_taskmanager_job_task_mailboxLatencyMs", Quantile(2.0), "quantile", "0.98"),
    mx("flink_taskmanager_job_task_mailboxLatencyMs", Quantile(3.0), "quantile", "0.99"),
    mx("flink_taskmanager_job_task_mailboxLatencyMs", Quantile(8.0), "quantile", "0.999"),
    m("flink_taskmanager_job_task_mailboxLatencyMs_count", Counter(20.0)),
];

/// Every operator instance: 11 series.
#[rustfmt::skip]
pub(crate) const OPERATOR: &[MetricDef] = &[
    m("flink_taskmanager_job_task_operator_numRecordsIn", Counter(2000.0)),
    m("flink_taskmanager_job_task_operator_numRecordsOut", Counter(2000.0)),
    m("flink_taskmanager_job_task_operator_numRecordsInPerSecond", Meter(2000.0)),
    m("flink_taskmanager_job_task_operator_numRecordsOutPerSecond", Meter(2000.0)),
    m("flink_taskmanager_job_task_operator_numBytesIn", Counter(2.0e5)),
    m("flink_taskmanager_job_task_operator_numBytesOut", Counter(2.0e5)),
    m("flink_taskmanager_job_task_operator_numBytesInPerSecond", Meter(2.0e5)),
    m("flink_taskmanager_job_task_operator_numBytesOutPerSecond", Meter(2.0e5)),
    m("flink_taskmanager_job_task_operator_currentInputWatermark", Watermark),
    m("flink_taskmanager_job_task_operator_currentOutputWatermark", Watermark),
    m("flink_taskmanager_job_task_operator_numLateRecordsDropped", Counter(0.01)),
];

/// Extra series of a source operator: 2 FLIP-33 metrics plus 7 for its one split (label split).
#[rustfmt::skip]
pub(crate) const SOURCE_EXTRA: &[MetricDef] = &[
    m("flink_taskmanager_job_task_operator_numRecordsInErrors", Const(0.0)),
    m("flink_taskmanager_job_task_operator_watermarkLag", NearConst(200.0)),
    mx("flink_taskmanager_job_task_operator_split_watermark_currentWatermark", Watermark, "split", "0"),
    mx("flink_taskmanager_job_task_operator_split_watermark_activeTimeMsPerSecond", MsPerSecond, "split", "0"),
    mx("flink_taskmanager_job_task_operator_split_watermark_pausedTimeMsPerSecond", Const(0.0), "split", "0"),
    mx("flink_taskmanager_job_task_operator_split_watermark_idleTimeMsPerSecond", MsPerSecond, "split", "0"),
    mx("flink_taskmanager_job_task_operator_split_watermark_accumulatedActiveTimeMs", Counter(900.0), "split", "0"),
    mx("flink_taskmanager_job_task_operator_split_watermark_accumulatedPausedTimeMs", Const(0.0), "split", "0"),
    mx("flink_taskmanager_job_task_operator_split_watermark_accumulatedIdleTimeMs", Counter(100.0), "split", "0"),
];

/// Extra series of a sink operator (FLIP-33): 3.
#[rustfmt::skip]
pub(crate) const SINK_EXTRA: &[MetricDef] = &[
    m("flink_taskmanager_job_task_operator_numRecordsSend", Counter(2000.0)),
    m("flink_taskmanager_job_task_operator_numBytesSend", Counter(2.0e5)),
    m("flink_taskmanager_job_task_operator_numRecordsSendErrors", Const(0.0)),
];

/// The job graph every job runs: vertices (chained tasks) and their operators' names.
/// Six vertices and fifteen operators, as the job FLINK.md counts ~2,100 series per TM for.
pub(crate) const VERTICES: &[&[&str]] = &[
    &["Source: kafka-orders", "parse-json", "filter-valid"],
    &["assign-timestamps", "key-by-customer"],
    &["enrich-async", "map-to-event", "dedup"],
    &["tumbling-window-1m", "aggregate-sum"],
    &["interval-join", "score", "filter-alerts"],
    &["format-avro", "Sink: kafka-alerts: Writer"],
];

/// Flink's Prometheus reporter label-value sanitising: every character outside
/// `[a-zA-Z0-9:_]` becomes `_`.
pub(crate) fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == ':' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Flink's chained task name: operator names joined with " -> ", then sanitised.
pub(crate) fn task_name(ops: &[&str]) -> String {
    sanitize(&ops.join(" -> "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_sizes_match_flink_md() {
        assert_eq!(TM.len(), 40);
        assert_eq!(TASK.len(), 60);
        assert_eq!(OPERATOR.len(), 11);
        assert_eq!(OPERATOR.len() + SOURCE_EXTRA.len(), 20);
        assert_eq!(OPERATOR.len() + SINK_EXTRA.len(), 14);
        assert_eq!(VERTICES.iter().map(|v| v.len()).sum::<usize>(), 15);
    }

    #[test]
    fn sanitize_like_the_reporter() {
        assert_eq!(
            task_name(&["Source: datagen-source", "double-map"]),
            "Source:_datagen_source____double_map"
        );
    }
}
