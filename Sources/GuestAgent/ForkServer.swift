import DescriptorPassing
import Glibc

/// A warm interpreter that judge cases are forked from (`guest/fork-servers/`, named by a language's
/// `forkServer` in the registry): under TCG a fresh Python spends ~250 ms starting, a fork ~20-50 ms.
///
/// It runs as root outside any job cgroup, started once per judge job after the compile and killed
/// after the last case. It never sees a case's data: each launch is one byte with four descriptors
/// (stdin, stdout, stderr, and a memfd holding the ``Request``), and only the forked case process reads
/// the memfd. The case process is forked twice, so it is the agent's child like any spawned step
/// (reaped by ``ChildReaper``), and joins the case's cgroup, takes its stdio, closes everything else and
/// drops to the runner user before the program runs. The protocol is documented in the server's file.
final class ForkServer {
    /// What one case process needs; the server's script turns it into argv, path and environment.
    struct Request {
        var cgroup: String
        var directory: String
        var entry: String
        /// The program has other files: its directory goes first on the module path (`runWithModules`).
        var importable: Bool
        var maxFileSizeBytes: Int?
        var arguments: [String]
        var environment: [String]

        /// NUL-terminated fields, version first: see `read_request` in guest/fork-servers/python.py.
        var encoded: [UInt8] {
            var fields = ["1", cgroup, directory, entry, importable ? "1" : "0", String(maxFileSizeBytes ?? -1)]
            fields += [String(arguments.count)] + arguments + [String(environment.count)] + environment
            return fields.flatMap { Array($0.utf8) + [0] }
        }
    }

    let pid: pid_t
    private let control: Int32
    /// A launch that fails or times out retires the server: the remaining cases are spawned as usual.
    private(set) var usable = true

    /// How long a launch may take before the server counts as stuck.
    private static let launchTimeoutMilliseconds = 5000
    /// The interpreter's start-up under TCG, with room for a busy host.
    private static let startTimeoutMilliseconds = 15000

    private init(pid: pid_t, control: Int32) {
        self.pid = pid
        self.control = control
    }

    /// Starts `argv` as root with the control socket as its fd 3.
    static func start(argv: [String], environment: [String]) throws -> ForkServer {
        var ends: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &ends) == 0 else {
            throw AgentError.system("socketpair for the fork server")
        }
        defer { close(ends[1]) }
        let null = open("/dev/null", O_RDWR | O_CLOEXEC)
        guard null >= 0 else {
            close(ends[0])
            throw AgentError.system("open /dev/null")
        }
        defer { close(null) }
        let pid: pid_t
        do {
            // Its own diagnostics go to the console (the guest log), like the agent's.
            pid = try Spawn.start(
                argv: argv, environment: environment, stdin: null, stdout: null, stderr: 2, resetIDs: false, passing: [ends[1]])
        } catch {
            close(ends[0])
            throw error
        }
        let server = ForkServer(pid: pid, control: ends[0])
        // Its start-up belongs to the job, not to the first case's wall time.
        guard let ready = server.receive(timeoutMilliseconds: startTimeoutMilliseconds), ready == [UInt8(ascii: "R")] else {
            server.retire()
            throw AgentError(.system, "the fork server \(argv.last ?? "") did not start in \(startTimeoutMilliseconds) ms")
        }
        return server
    }

    /// One message from the server, or nil after `timeoutMilliseconds` or when it is gone.
    private func receive(timeoutMilliseconds: Int) -> [UInt8]? {
        var reply = pollfd(fd: control, events: Int16(POLLIN), revents: 0)
        var ready: Int32
        repeat { ready = poll(&reply, 1, Int32(timeoutMilliseconds)) } while ready < 0 && errno == EINTR
        guard ready == 1 else { return nil }
        var bytes = [UInt8](repeating: 0, count: 32)
        let count = bytes.withUnsafeMutableBytes { recv(control, $0.baseAddress, $0.count, 0) }
        return count > 0 ? Array(bytes.prefix(count)) : nil
    }

    /// Forks one case process; returns its pid (a child of the agent by the time this returns).
    func launch(_ request: Request, stdin: Int32, stdout: Int32, stderr: Int32) throws -> pid_t {
        guard usable else { throw AgentError(.system, "the fork server was retired") }
        do {
            let memory = try Self.memoryFile(holding: request.encoded)
            defer { close(memory) }
            guard DescriptorPassing.send(control, [UInt8(ascii: "F")], descriptors: [stdin, stdout, stderr, memory]) == 1 else {
                throw AgentError.system("send to the fork server")
            }
            guard let reply = receive(timeoutMilliseconds: Self.launchTimeoutMilliseconds) else {
                throw AgentError(.system, "the fork server did not answer in \(Self.launchTimeoutMilliseconds) ms")
            }
            guard let pid = pid_t(String(decoding: reply, as: UTF8.self)), pid > 0 else {
                throw AgentError(.system, "the fork server could not fork a case")
            }
            return pid
        } catch {
            retire()
            throw error
        }
    }

    /// Ends the server (it holds no state worth a graceful exit); the reaper collects it.
    func retire() {
        guard usable else { return }
        usable = false
        close(control)
        kill(pid, SIGKILL)
    }

    deinit { retire() }

    /// A memfd with `bytes`, read from the start by whoever receives it.
    private static func memoryFile(holding bytes: [UInt8]) throws -> Int32 {
        // memfd_create is behind _GNU_SOURCE, which Swift's Glibc module does not define.
        typealias MemfdCreate = @convention(c) (UnsafePointer<CChar>, UInt32) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "memfd_create") else {
            throw AgentError(.system, "memfd_create not found")
        }
        let closeOnExec: UInt32 = 1  // MFD_CLOEXEC
        let fd = unsafeBitCast(symbol, to: MemfdCreate.self)("codebench-case", closeOnExec)
        guard fd >= 0 else { throw AgentError.system("memfd_create") }
        do {
            try Posix.writeAll(fd, bytes)
            guard lseek(fd, 0, SEEK_SET) == 0 else { throw AgentError.system("lseek memfd") }
        } catch {
            close(fd)
            throw error
        }
        return fd
    }
}
