/// Every rule a ``RunRequest`` must satisfy for the guest agent to run it: the bounds, size and
/// character rules behind its `invalid_request` answer, in one place.
///
/// The agent applies them through ``problem(request:)`` before it touches anything. They are public so
/// that the host can refuse the same jobs when it parses them, instead of booting a VM only to hear the
/// agent say no.
///
/// Each rule is a function returning nil when the value is acceptable, or a sentence naming the field
/// of the job JSON (the names a person submitting the job can fix), for example
/// `field 'limits.memory_bytes' must be at least 16777216`. Callers add their own prefix
/// (`invalid job: `, `request <id>: `).
///
/// Two kinds of callers need two views of the limits:
/// - What a job *asks for* (`problem(requestedMemoryBytes:)` and friends) is checked against the
///   minimums only: the worker lowers a request above the operator's maximum to that maximum instead
///   of refusing it, but raises nothing, so a value below a minimum stays below it.
/// - The limits a request is sent with (`problem(memoryBytes:)` and friends, ``problem(limits:)``) are
///   checked against the whole range: the agent does that, and an operator's maximums and defaults
///   must pass it too, or every job they shape would be refused.
///
/// Sizes and characters (id, command, source, stdin) are never adjusted by the worker, so the same
/// rule applies to the job as submitted and to the request.
public enum RequestRules {
    // MARK: Bounds

    /// Longest `id`, in UTF-8 bytes: the agent echoes it in its answer, and the worker names a Redis
    /// list after it.
    public static let maximumIDBytes = 256
    /// Longest shell `command`, in UTF-8 bytes. The command is one argument of `bash -c`, and Linux
    /// refuses to exec with an argument longer than MAX_ARG_STRLEN (32 pages, 131072 bytes with its
    /// terminating NUL): a longer command could never start.
    public static let maximumCommandBytes = 131_071
    /// Largest program `source` (`code` in a job), in UTF-8 bytes. It is written to a file, so the
    /// exec limit of commands does not apply.
    public static let maximumSourceBytes = 1 << 20
    /// Largest `stdin`, in bytes.
    public static let maximumStdinBytes = 16 << 20

    /// Shortest wall-time limit, in milliseconds.
    public static let minimumWallTimeMilliseconds = 1
    /// Longest wall-time limit: 15 minutes, in milliseconds.
    public static let maximumWallTimeMilliseconds = 900_000
    /// Smallest memory limit: 16 MiB. The limit is the job cgroup's `memory.max` and also the size of
    /// the tmpfs the job's files live in, and the file pages a program reads are charged to it. In a
    /// freshly booted guest, a minimal python3 program peaks at about 10.5 MiB; held to 8 MiB it still
    /// runs, at the cap, and with 1, 2 or 4 MiB it thrashes on reclaiming its own pages until the wall
    /// limit and ends `time_limit` (measured under TCG), which reads as the program's fault.
    public static let minimumMemoryBytes = 16 << 20
    /// Largest memory limit: 16 GiB.
    public static let maximumMemoryBytes = 16 << 30
    /// Fewest processes (cgroup `pids.max`): the program itself.
    public static let minimumProcesses = 1
    /// Most processes (cgroup `pids.max`).
    public static let maximumProcesses = 4096
    /// Fewest output bytes kept per stream: 0 keeps nothing (any output is then an output-limit verdict).
    public static let minimumOutputBytes = 0
    /// Most output bytes kept per stream: the three bounded streams of a result (stdout, stderr,
    /// compile output), base64-encoded, must fit the host's result frame.
    public static let maximumOutputBytes = 8 << 20

    /// Largest `run` frame payload the agent reads: ``maximumStdinBytes`` in base64 (4/3) plus
    /// ``maximumSourceBytes`` with every character escaped as `\uXXXX` (6 bytes), plus ``maximumFilesBytes``
    /// in base64 and the rest, rounded up.
    public static let maximumRequestPayloadBytes = 40 << 20

    // MARK: Field names

    /// The job JSON's name for each field the rules speak about; every reason quotes one of these.
    public enum Field {
        /// The job id (``RunRequest/id``).
        public static let id = "id"
        /// A shell workload's command line.
        public static let command = "command"
        /// A program workload's source: the job calls it `code`.
        public static let source = "code"
        /// The program's standard input.
        public static let stdin = "stdin"
        /// ``ResourceLimits/wallTimeMilliseconds``.
        public static let wallTime = "limits.wall_time_ms"
        /// The job's overall time budget, which bounds ``ResourceLimits/wallTimeMilliseconds`` too.
        public static let timeout = "timeout_ms"
        /// ``ResourceLimits/memoryBytes``.
        public static let memoryBytes = "limits.memory_bytes"
        /// ``ResourceLimits/memoryBytes``, as a job may give it in MiB.
        public static let memoryMiB = "limits.memory_mb"
        /// ``ResourceLimits/maxProcesses``.
        public static let processes = "limits.processes"
        /// ``ResourceLimits/maxOutputBytesPerStream``.
        public static let outputBytes = "limits.output_bytes"
    }

    // MARK: Sizes and characters (the same before and after the worker's clamping)

    /// `id`: not empty, at most ``maximumIDBytes`` UTF-8 bytes, no control characters (C0, DEL, C1).
    /// Control characters are refused because the id is written to logs and names a Redis key, where
    /// a newline or escape sequence could forge or garble lines.
    public static func problem(id: String) -> String? {
        if id.isEmpty { return "field '\(Field.id)' must not be empty" }
        if id.utf8.count > maximumIDBytes { return "field '\(Field.id)' must be at most \(maximumIDBytes) bytes" }
        if containsControlCharacter(id) { return "field '\(Field.id)' must not contain control characters" }
        return nil
    }

    /// Whether `text` holds a C0 control, DEL or a C1 control (U+0080 ... U+009F), found in its UTF-8:
    /// the agent checks every request's id, and in a VM just restored the bytes' loop is far less code
    /// for TCG to translate than decoding unicode scalars. A String's UTF-8 is always valid, so a C1
    /// control is exactly the lead byte 0xC2 followed by 0x80 ... 0x9F.
    static func containsControlCharacter(_ text: String) -> Bool {
        var afterC2 = false
        for byte in text.utf8 {
            if byte < 0x20 || byte == 0x7F || (afterC2 && byte <= 0x9F) { return true }
            afterC2 = byte == 0xC2
        }
        return false
    }

    /// Shell `command`: at most ``maximumCommandBytes`` UTF-8 bytes and no NUL byte. A command reaches
    /// bash as a C string, where a NUL would silently cut it short: it is refused instead.
    public static func problem(command: String) -> String? {
        if command.utf8.count > maximumCommandBytes {
            return "field '\(Field.command)' must be at most \(maximumCommandBytes) bytes"
        }
        if command.utf8.contains(0) { return "field '\(Field.command)' must not contain a NUL byte" }
        return nil
    }

    /// Program `source` (the job's `code`): at most ``maximumSourceBytes`` UTF-8 bytes. Any character
    /// is allowed: the source is written to a file, and what a NUL means is for the compiler or
    /// interpreter to say, in the job's own output.
    public static func problem(source: String) -> String? {
        if source.utf8.count > maximumSourceBytes {
            return "field '\(Field.source)' must be at most \(maximumSourceBytes) bytes"
        }
        return nil
    }

    /// `stdin`: at most ``maximumStdinBytes`` bytes. Any byte is allowed (binary input is fine: stdin
    /// reaches the program as a file).
    public static func problem(stdin: some Collection<UInt8>) -> String? {
        if stdin.count > maximumStdinBytes { return "field '\(Field.stdin)' must be at most \(maximumStdinBytes) bytes" }
        return nil
    }

    /// The command or source of a workload, by ``problem(command:)`` or ``problem(source:)``.
    public static func problem(workload: Workload) -> String? {
        switch workload {
        case .shell(let command): problem(command: command)
        case .program(_, let source): problem(source: source)
        case .project: nil
        }
    }

    // MARK: Limits a job asks for (before clamping: minimums only)

    /// A requested `limits.wall_time_ms` (or `timeout_ms`, which bounds the same limit): at least
    /// ``minimumWallTimeMilliseconds``.
    public static func problem(requestedWallTimeMilliseconds value: Int) -> String? {
        below(value, minimumWallTimeMilliseconds, Field.wallTime)
    }

    /// A requested `timeout_ms`: the worker runs a job with the smaller of it and `limits.wall_time_ms`,
    /// so it meets the same minimum, ``minimumWallTimeMilliseconds``; the reason names `timeout_ms`.
    public static func problem(requestedTimeoutMilliseconds value: Int) -> String? {
        below(value, minimumWallTimeMilliseconds, Field.timeout)
    }

    /// A requested `limits.memory_bytes`: at least ``minimumMemoryBytes``.
    public static func problem(requestedMemoryBytes value: Int) -> String? {
        below(value, minimumMemoryBytes, Field.memoryBytes)
    }

    /// A requested `limits.memory_mb` (MiB): at least ``minimumMemoryBytes`` in MiB (16), so the reason
    /// is in the unit the job used.
    public static func problem(requestedMemoryMiB value: Int) -> String? {
        below(value, minimumMemoryBytes >> 20, Field.memoryMiB)
    }

    /// A requested `limits.processes`: at least ``minimumProcesses``.
    public static func problem(requestedProcesses value: Int) -> String? {
        below(value, minimumProcesses, Field.processes)
    }

    /// A requested `limits.output_bytes`: at least ``minimumOutputBytes``.
    public static func problem(requestedOutputBytes value: Int) -> String? {
        below(value, minimumOutputBytes, Field.outputBytes)
    }

    // MARK: Limits a request is sent with (after clamping: the whole range)

    /// Wall time: ``minimumWallTimeMilliseconds`` ... ``maximumWallTimeMilliseconds``.
    public static func problem(wallTimeMilliseconds value: Int) -> String? {
        outside(value, minimumWallTimeMilliseconds, maximumWallTimeMilliseconds, Field.wallTime)
    }

    /// Memory: ``minimumMemoryBytes`` ... ``maximumMemoryBytes``.
    public static func problem(memoryBytes value: Int) -> String? {
        outside(value, minimumMemoryBytes, maximumMemoryBytes, Field.memoryBytes)
    }

    /// Processes: ``minimumProcesses`` ... ``maximumProcesses``.
    public static func problem(processes value: Int) -> String? {
        outside(value, minimumProcesses, maximumProcesses, Field.processes)
    }

    /// Output bytes kept per stream: ``minimumOutputBytes`` ... ``maximumOutputBytes``.
    public static func problem(outputBytes value: Int) -> String? {
        outside(value, minimumOutputBytes, maximumOutputBytes, Field.outputBytes)
    }

    /// The first of the four limits outside its range, in the order wall time, memory, processes, output.
    public static func problem(limits: ResourceLimits) -> String? {
        problem(wallTimeMilliseconds: limits.wallTimeMilliseconds)
            ?? problem(memoryBytes: limits.memoryBytes)
            ?? problem(processes: limits.maxProcesses)
            ?? problem(outputBytes: limits.maxOutputBytesPerStream)
    }

    // MARK: A whole request

    /// Every rule, in the order id, command or source, stdin, limits; the first problem found. This is
    /// exactly what the agent checks before it runs a request.
    public static func problem(request: RunRequest) -> String? {
        problem(id: request.id)
            ?? problem(workload: request.workload)
            ?? problem(stdin: request.stdin)
            ?? problem(limits: request.limits)
            ?? judgeProblem(request: request)
            ?? request.preparedRequests.flatMap { outside($0, 1, RunRequest.maximumPreparedRequests, "preparedRequests") }
    }

    private static func below(_ value: Int, _ minimum: Int, _ field: String) -> String? {
        value < minimum ? "field '\(field)' must be at least \(minimum)" : nil
    }

    static func outside(_ value: Int, _ minimum: Int, _ maximum: Int, _ field: String) -> String? {
        if value < minimum { return "field '\(field)' must be at least \(minimum)" }
        if value > maximum { return "field '\(field)' must be at most \(maximum)" }
        return nil
    }
}
