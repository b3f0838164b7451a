import AgentProtocol

/// Bounds on what a request may ask for. The agent trusts nothing in a request beyond these checks.
enum RequestValidation {
    static let maximumSourceBytes = 1 << 20
    static let maximumStdinBytes = 16 << 20
    static let maximumIDBytes = 256
    static let wallTimeRange = 1...900_000
    static let memoryRange = (1 << 20)...(16 << 30)
    static let processRange = 1...4096
    /// Three bounded streams (stdout, stderr, compile output) base64-encoded must fit a 64 MiB frame.
    static let outputRange = 0...(8 << 20)
    /// Largest frame the agent reads: 16 MiB of stdin in base64 plus 1 MiB of source, worst-case escaped.
    static let maximumRequestPayload = 32 << 20

    static func validate(_ request: RunRequest) throws(AgentError) {
        func check(_ condition: Bool, _ message: @autoclosure () -> String) throws(AgentError) {
            if !condition { throw AgentError(.invalidRequest, message()) }
        }
        try check(request.id.utf8.count <= maximumIDBytes, "id is longer than \(maximumIDBytes) bytes")
        switch request.workload {
        case .shell(let command):
            try check(command.utf8.count <= maximumSourceBytes, "command is larger than \(Format.bytes(maximumSourceBytes))")
            try check(!command.utf8.contains(0), "command contains a NUL byte")
        case .program(_, let source):
            try check(source.utf8.count <= maximumSourceBytes, "source is larger than \(Format.bytes(maximumSourceBytes))")
        }
        try check(request.stdin.count <= maximumStdinBytes, "stdin is larger than \(Format.bytes(maximumStdinBytes))")
        let limits = request.limits
        try check(wallTimeRange.contains(limits.wallTimeMilliseconds),
                  "wallTimeMilliseconds \(limits.wallTimeMilliseconds) is outside \(wallTimeRange.lowerBound)...\(wallTimeRange.upperBound)")
        try check(memoryRange.contains(limits.memoryBytes),
                  "memoryBytes \(limits.memoryBytes) is outside \(memoryRange.lowerBound)...\(memoryRange.upperBound)")
        try check(processRange.contains(limits.maxProcesses),
                  "maxProcesses \(limits.maxProcesses) is outside \(processRange.lowerBound)...\(processRange.upperBound)")
        try check(outputRange.contains(limits.maxOutputBytesPerStream),
                  "maxOutputBytesPerStream \(limits.maxOutputBytesPerStream) is outside \(outputRange.lowerBound)...\(outputRange.upperBound)")
    }
}
