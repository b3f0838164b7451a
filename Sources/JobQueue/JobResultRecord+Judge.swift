extension JobResultRecord {
    /// One element of `tests` in the result JSON.
    public struct TestRecord: Sendable, Codable, Equatable {
        public var name: String
        /// `accepted`, `wrong_answer`, `time_limit`, `cpu_time_limit`, `memory_limit`, `output_limit`,
        /// `runtime_error`, `skipped`, `internal_error` (the checker failed).
        public var verdict: String
        public var exitCode: Int32?
        public var signal: Int32?
        public var wallMilliseconds: Int?
        public var cpuMilliseconds: Int?
        public var peakMemoryBytes: Int?
        /// The case's output, at most the worker's `case-output-bytes` (UTF-8, invalid bytes replaced).
        public var stdout: String
        public var stderr: String
        public var stdoutTruncated: Bool
        public var stderrTruncated: Bool
        public var message: String?

        enum CodingKeys: String, CodingKey {
            case name, verdict, signal, stdout, stderr, message
            case exitCode = "exit_code"
            case wallMilliseconds = "wall_ms"
            case cpuMilliseconds = "cpu_ms"
            case peakMemoryBytes = "peak_memory_bytes"
            case stdoutTruncated = "stdout_truncated"
            case stderrTruncated = "stderr_truncated"
        }

        public init(
            name: String, verdict: String, exitCode: Int32? = nil, signal: Int32? = nil, wallMilliseconds: Int? = nil,
            cpuMilliseconds: Int? = nil, peakMemoryBytes: Int? = nil, stdout: String = "", stderr: String = "",
            stdoutTruncated: Bool = false, stderrTruncated: Bool = false, message: String? = nil
        ) {
            self.name = name
            self.verdict = verdict
            self.exitCode = exitCode
            self.signal = signal
            self.wallMilliseconds = wallMilliseconds
            self.cpuMilliseconds = cpuMilliseconds
            self.peakMemoryBytes = peakMemoryBytes
            self.stdout = stdout
            self.stderr = stderr
            self.stdoutTruncated = stdoutTruncated
            self.stderrTruncated = stderrTruncated
            self.message = message
        }
    }

    /// `limits` in the result JSON: what the job ran with, after the operator's defaults and maximums.
    public struct LimitsRecord: Sendable, Codable, Equatable {
        public var wallTimeMilliseconds: Int
        public var cpuTimeMilliseconds: Int?
        public var memoryBytes: Int
        public var processes: Int
        public var outputBytes: Int
        public var compileWallTimeMilliseconds: Int?
        public var compileMemoryBytes: Int?
        public var maxFileSizeBytes: Int?

        enum CodingKeys: String, CodingKey {
            case processes
            case wallTimeMilliseconds = "wall_time_ms"
            case cpuTimeMilliseconds = "cpu_time_ms"
            case memoryBytes = "memory_bytes"
            case outputBytes = "output_bytes"
            case compileWallTimeMilliseconds = "compile_wall_time_ms"
            case compileMemoryBytes = "compile_memory_bytes"
            case maxFileSizeBytes = "max_file_size_bytes"
        }

        public init(
            wallTimeMilliseconds: Int, cpuTimeMilliseconds: Int? = nil, memoryBytes: Int, processes: Int, outputBytes: Int,
            compileWallTimeMilliseconds: Int? = nil, compileMemoryBytes: Int? = nil, maxFileSizeBytes: Int? = nil
        ) {
            self.wallTimeMilliseconds = wallTimeMilliseconds
            self.cpuTimeMilliseconds = cpuTimeMilliseconds
            self.memoryBytes = memoryBytes
            self.processes = processes
            self.outputBytes = outputBytes
            self.compileWallTimeMilliseconds = compileWallTimeMilliseconds
            self.compileMemoryBytes = compileMemoryBytes
            self.maxFileSizeBytes = maxFileSizeBytes
        }
    }
}
