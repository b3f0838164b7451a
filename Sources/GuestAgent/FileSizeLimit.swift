import Glibc

/// RLIMIT_FSIZE for a step. posix_spawn cannot set a child's limits, and a child inherits the
/// spawner's: so the agent (single-threaded) lowers its own limit for the spawn and restores it after.
/// Both soft and hard limits are lowered, so the job cannot raise its soft limit back; the agent can,
/// as root with CAP_SYS_RESOURCE.
enum FileSizeLimit {
    static func `while`<T>(_ bytes: Int?, _ body: () throws -> T) throws -> T {
        guard let bytes else { return try body() }
        var saved = rlimit()
        guard getrlimit(Int32(RLIMIT_FSIZE.rawValue), &saved) == 0 else { throw AgentError.system("getrlimit(RLIMIT_FSIZE)") }
        // Not root (host test mode): a lowered hard limit could not be raised again, so only the soft one moves.
        let hard = geteuid() == 0 ? rlim_t(bytes) : saved.rlim_max
        var limited = rlimit(rlim_cur: min(rlim_t(bytes), hard), rlim_max: hard)
        guard setrlimit(Int32(RLIMIT_FSIZE.rawValue), &limited) == 0 else { throw AgentError.system("setrlimit(RLIMIT_FSIZE)") }
        defer {
            if setrlimit(Int32(RLIMIT_FSIZE.rawValue), &saved) != 0 {
                // Later steps and the agent's own writes would inherit the job's limit: end the VM instead.
                Log.fatal("cannot restore RLIMIT_FSIZE: \(AgentError.system("setrlimit"))")
                Posix.rebootNow()
            }
        }
        return try body()
    }

    /// Sets both limits of a process the agent started ahead (``PreparedShell``), before it runs any
    /// of the job's code. prlimit is behind _GNU_SOURCE, which Swift's Glibc module does not define.
    static func set(_ bytes: Int, of pid: pid_t) throws {
        typealias Prlimit = @convention(c) (pid_t, Int32, UnsafePointer<rlimit>?, UnsafeMutablePointer<rlimit>?) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "prlimit") else { throw AgentError(.system, "prlimit not found") }
        var limit = rlimit(rlim_cur: rlim_t(bytes), rlim_max: rlim_t(bytes))
        guard unsafeBitCast(symbol, to: Prlimit.self)(pid, Int32(RLIMIT_FSIZE.rawValue), &limit, nil) == 0 else {
            throw AgentError.system("prlimit(RLIMIT_FSIZE) of \(pid)")
        }
    }
}
