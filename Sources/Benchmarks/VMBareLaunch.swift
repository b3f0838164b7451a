import AgentProtocol
import Foundation
import MicroVM

#if canImport(Glibc)
import Glibc
#endif

/// The baseline of `bench vm`: QEMU launched by hand with the driver's exact command line, and a
/// minimal blocking client on the agent socket (connect, read the hello frame, write one raw run
/// frame, read the result frame). No rings, no event loop, no boot steps, no teardown bookkeeping:
/// what is left is QEMU, the guest and the agent.
enum VMBareLaunch {
    struct Sample {
        var launchToResult: Duration
        var launchToHello: Duration
        var peakRSSKiB: Int?
        /// Host CPU time of the QEMU process, from spawn to kill.
        var cpuTime: Duration?
        /// Resume sent → its hello read, on the host; nil without a resume.
        var resumeToHello: Duration? = nil
        /// The agent's phases of the resume, when the resume asked for them (``AgentResume/tracePhases``).
        var resumePhases: [AgentPhase]? = nil
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// One bare launch, run on its own thread (the calls block).
    /// With `resume`, the arguments restore a snapshot: the client sends `resume` first and waits for
    /// the hello that answers it, as the driver does; QEMU reads the state, `incomingStatePath`, as
    /// its descriptor 3, as from the driver.
    static func sample(
        binary: String, arguments: [String], socketPath: String, request: RunRequest, resume: AgentResume? = nil,
        incomingStatePath: String? = nil, timeout: Duration
    ) async throws -> Sample {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                continuation.resume(
                    with: Result {
                        try sampleBlocking(
                            binary: binary, arguments: arguments, socketPath: socketPath, request: request, resume: resume,
                            incomingStatePath: incomingStatePath, timeout: timeout)
                    })
            }
            thread.start()
        }
    }

    private static func sampleBlocking(
        binary: String, arguments: [String], socketPath: String, request: RunRequest, resume: AgentResume?, incomingStatePath: String?,
        timeout: Duration
    ) throws -> Sample {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        if let incomingStatePath { posix_spawn_file_actions_addopen(&actions, 3, incomingStatePath, O_RDONLY, 0) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
        let argv: [UnsafeMutablePointer<CChar>?] = ([binary] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }

        let start = clock.now
        var pid: pid_t = 0
        let spawned = argv.withUnsafeBufferPointer { posix_spawn(&pid, binary, &actions, &attributes, $0.baseAddress!, environ) }
        guard spawned == 0 else { throw Failure(description: "posix_spawn \(binary): \(String(cString: strerror(spawned)))") }
        var cpuTime: Duration?
        func reap() {
            guard cpuTime == nil else { return }
            kill(-pid, SIGKILL)
            var status: Int32 = 0
            var usage = rusage()
            while wait4(pid, &status, 0, &usage) < 0 && errno == EINTR {}
            cpuTime = VMMProcess.cpuTime(usage)
        }
        defer {
            reap()
            unlink(socketPath)
        }

        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in socketPath.utf8.prefix(raw.count - 1).enumerated() { raw[index] = byte }
        }
        while true {
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            if connected == 0 { break }
            guard clock.now < deadline else { throw Failure(description: "cannot connect to \(socketPath)") }
            usleep(1000)
        }
        var timeval = timeval(tv_sec: Int(timeout.components.seconds) + 1, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeval, socklen_t(MemoryLayout<timeval>.size))

        var decoder = AgentFrameDecoder()
        func nextMessage() throws -> AgentMessage {
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                if let message = try decoder.next() { return message }
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                guard n > 0, clock.now < deadline else { throw Failure(description: "agent channel ended or timed out") }
                decoder.append(buffer[0..<n])
            }
        }
        func send(_ message: AgentMessage) throws {
            let frame = try AgentFrame.encode(message)
            var offset = 0
            while offset < frame.count {
                let n = frame.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
                guard n > 0 else { throw Failure(description: "write to the agent failed") }
                offset += n
            }
        }
        var resumed: (roundTrip: Duration, phases: [AgentPhase]?)?
        if let resume {
            let sent = clock.now
            try send(.resume(resume))
            while true {
                guard case .hello(let hello) = try nextMessage() else { throw Failure(description: "resume was not answered by a hello") }
                if hello.resumeNonce == resume.nonce {
                    resumed = (clock.now - sent, hello.phases)
                    break
                }
            }
        } else {
            guard case .hello = try nextMessage() else { throw Failure(description: "first frame was not a hello") }
        }
        let hello = clock.now - start
        try send(.run(request))
        guard case .result = try nextMessage() else { throw Failure(description: "the answer was not a result") }
        let result = clock.now - start
        let peakRSS = VMPeakRSS.kib(of: pid)
        reap()
        return Sample(
            launchToResult: result, launchToHello: hello, peakRSSKiB: peakRSS, cpuTime: cpuTime, resumeToHello: resumed?.roundTrip,
            resumePhases: resumed?.phases)
    }
}

/// Peak resident set of a process (`VmHWM` in /proc/<pid>/status), in KiB.
enum VMPeakRSS {
    static func kib(of pid: pid_t) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            return Int(line.dropFirst(6).trimmingCharacters(in: .whitespaces).split(separator: " ").first ?? "")
        }
        return nil
    }
}
