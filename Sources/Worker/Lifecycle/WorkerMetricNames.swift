/// The metrics a worker emits, as operators scrape them (the README lists them), and the histogram
/// buckets that suit each timer.
public enum WorkerMetricNames {
    /// Counter, dimension `ending`: done, failed, invalid, requeued.
    public static let jobs = "codebench_worker_jobs_total"
    /// Gauge: VMs between boot and teardown.
    public static let vmsRunning = "codebench_worker_vms_running"
    /// Timer: one VM's whole life (boot, job, teardown).
    public static let vmSeconds = "codebench_worker_vm_seconds"
    /// Timer: host CPU time one job's VM cost (its VMM with the jail's launcher and the emulated
    /// guest), recorded once the VM is torn down, when the driver can measure it.
    public static let vmHostCPUSeconds = "codebench_worker_vm_host_cpu_seconds"
    /// Timer: until the guest agent answered (from a snapshot or cold).
    public static let bootSeconds = "codebench_worker_boot_seconds"
    /// Timer: from claim to the VM's start, inside this worker.
    public static let queueSeconds = "codebench_worker_queue_seconds"
    /// Counter: Redis outages seen by the claim loop (one per outage, not per failed claim).
    public static let redisOutages = "codebench_worker_redis_outages_total"
    /// Gauge: VMs booted ahead of jobs and parked (`warm-vms`).
    public static let vmsWarm = "codebench_worker_vms_warm"
    /// Counter: jobs that started on a parked VM.
    public static let warmStarts = "codebench_worker_warm_starts_total"

    /// Buckets per timer for a histogram backend: a backend's defaults (5 ms to 10 s) would put
    /// every VM of a long job in +Inf and every queue wait in the first bucket.
    public static let timerBuckets: [String: [Duration]] = [
        vmSeconds: [0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120].map(seconds),
        vmHostCPUSeconds: [0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 120].map(seconds),
        bootSeconds: [0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20].map(seconds),
        queueSeconds: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 5].map(seconds),
    ]

    private static func seconds(_ value: Double) -> Duration { .milliseconds(Int64((value * 1000).rounded())) }
}
