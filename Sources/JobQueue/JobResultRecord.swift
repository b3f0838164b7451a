import FoundationEssentials

/// The JSON element appended after the original worker's terminal elements (`done`, stdout, stderr / `failed`, reason).
///
/// Every field is optional and new fields may be added; readers must ignore fields they do not know.
/// ``JobQueue`` fills `id`, `status`, `worker_id`, `attempt` and `finished_at_ms` itself.
public struct JobResultRecord: Sendable, Codable, Equatable {
    /// `id`: set by the queue.
    public var id: String?
    /// `status`: `done` or `failed`, set by the queue.
    public var status: String?
    /// `verdict`: how the guest judged the run (`ok`, `runtime_error`, `time_limit`, ...; docs/wire-contract.md).
    public var verdict: String?
    /// `exit_code`, when the program exited.
    public var exitCode: Int32?
    /// `signal`, when the program was killed by one.
    public var signal: Int32?
    /// `wall_ms`.
    public var wallMilliseconds: Int?
    /// `cpu_ms`.
    public var cpuMilliseconds: Int?
    /// `peak_memory_bytes`.
    public var peakMemoryBytes: Int?
    /// `stdout_truncated`: output beyond the limit was dropped.
    public var stdoutTruncated: Bool?
    /// `stderr_truncated`.
    public var stderrTruncated: Bool?
    /// Compiler diagnostics for compiled languages (UTF-8, invalid bytes replaced).
    public var compileOutput: String?
    /// A sentence for a person (the verdict's explanation, or the failure reason).
    public var message: String?
    /// `worker_id`: the worker that published (set by the queue).
    public var workerID: String?
    /// Which delivery of the job this was (1 unless a worker died while running it).
    public var attempt: Int?
    /// The VMM that ran the job ("qemu", "firecracker").
    public var vmm: String?
    /// `boot_ms`: VM boot time.
    public var bootMilliseconds: Int?
    /// Time between the claim and the start of the run.
    public var queueMilliseconds: Int?
    /// `host_cpu_ms`: host CPU time the job's VM cost: its VMM, with the jail's launcher and the
    /// emulated guest, from spawn to teardown (for a warm VM, its priming too). Absent when the VMM
    /// could not measure it.
    public var hostCPUMilliseconds: Int?
    /// `finished_at_ms`: Unix time in milliseconds (set by the queue).
    public var finishedAtMilliseconds: Int?
    /// `tests`: judge mode's per-case results, in the job's order.
    public var tests: [TestRecord]?
    /// `passed`: cases accepted (judge mode).
    public var passed: Int?
    /// `total`: cases in the job (judge mode).
    public var total: Int?
    /// `limits`: what the job ran with, after the operator's defaults and maximums.
    public var limits: LimitsRecord?

    enum CodingKeys: String, CodingKey {
        case id, status, verdict, signal, message, attempt, vmm
        case exitCode = "exit_code"
        case wallMilliseconds = "wall_ms"
        case cpuMilliseconds = "cpu_ms"
        case peakMemoryBytes = "peak_memory_bytes"
        case stdoutTruncated = "stdout_truncated"
        case stderrTruncated = "stderr_truncated"
        case compileOutput = "compile_output"
        case workerID = "worker_id"
        case bootMilliseconds = "boot_ms"
        case queueMilliseconds = "queue_ms"
        case hostCPUMilliseconds = "host_cpu_ms"
        case finishedAtMilliseconds = "finished_at_ms"
        case tests, passed, total, limits
    }

    public init(
        verdict: String? = nil, exitCode: Int32? = nil, signal: Int32? = nil, wallMilliseconds: Int? = nil,
        cpuMilliseconds: Int? = nil, peakMemoryBytes: Int? = nil, stdoutTruncated: Bool? = nil,
        stderrTruncated: Bool? = nil, compileOutput: String? = nil, message: String? = nil, vmm: String? = nil,
        bootMilliseconds: Int? = nil, queueMilliseconds: Int? = nil
    ) {
        self.verdict = verdict
        self.exitCode = exitCode
        self.signal = signal
        self.wallMilliseconds = wallMilliseconds
        self.cpuMilliseconds = cpuMilliseconds
        self.peakMemoryBytes = peakMemoryBytes
        self.stdoutTruncated = stdoutTruncated
        self.stderrTruncated = stderrTruncated
        self.compileOutput = compileOutput
        self.message = message
        self.vmm = vmm
        self.bootMilliseconds = bootMilliseconds
        self.queueMilliseconds = queueMilliseconds
    }

    /// Reads a record back from its JSON (a client reading the trailing element); nil when it is not one.
    public init?(json: String) {
        guard let record = try? JSONDecoder().decode(JobResultRecord.self, from: Data(json.utf8)) else { return nil }
        self = record
    }

    /// Compact JSON with sorted keys.
    public func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding a struct of optionals and scalars cannot fail.
        let data = (try? encoder.encode(self)) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }
}
