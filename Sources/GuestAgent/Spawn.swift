import Glibc

/// posix_spawn, because Foundation's Process hangs in the guest (its CFSocket wake-up pair fails) and
/// Swift cannot call fork. The child gets default signal dispositions and an empty mask (the agent
/// ignores SIGPIPE and handles SIGCHLD; neither must leak into a job) and its own session, so the job
/// never receives console signals and, outside a cgroup, can be killed as a process group.
enum Spawn {
    private static let setSessionFlag: Int32 = 0x80  // POSIX_SPAWN_SETSID (glibc >= 2.26), hidden behind _GNU_SOURCE

    /// Starts `argv[0]`, looked up in PATH, with the given environment and standard streams.
    /// `resetIDs`: the child sets its effective uid/gid to the real ones before exec (see ``Sandbox``).
    /// `passing`: descriptors the child gets as fd 3, 4, … (a fork server's control socket; a prepared
    /// shell's command file and go pipe).
    static func start(
        argv: [String], environment: [String], stdin: Int32, stdout: Int32, stderr: Int32, resetIDs: Bool, passing: [Int32] = []
    ) throws -> pid_t {
        // dup2 runs in order: a source among the targets of an earlier dup2 would be clobbered, so
        // such a source is first copied above the targets (close-on-exec, closed after the spawn).
        let targets = Int32(0)..<(3 + Int32(passing.count))
        var copies: [Int32] = []
        defer { copies.forEach { close($0) } }
        func source(_ fd: Int32, for target: Int32) throws -> Int32 {
            guard fd != target, targets.contains(fd) else { return fd }
            let copy = fcntl(fd, F_DUPFD_CLOEXEC, targets.upperBound)
            guard copy >= 0 else { throw AgentError.system("dup descriptor \(fd)") }
            copies.append(copy)
            return copy
        }
        let sources = try zip([stdin, stdout, stderr] + passing, targets).map { try source($0, for: $1) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (fd, target) in zip(sources, targets) { posix_spawn_file_actions_adddup2(&actions, fd, target) }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigdefault(&attributes, &all)
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        let flags = POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | setSessionFlag | (resetIDs ? POSIX_SPAWN_RESETIDS : 0)
        posix_spawnattr_setflags(&attributes, Int16(flags))

        let cArguments = argv.map { strdup($0) } + [nil]
        let cEnvironment = environment.map { strdup($0) } + [nil]
        defer {
            cArguments.forEach { free($0) }
            cEnvironment.forEach { free($0) }
        }
        var pid = pid_t()
        let rc = posix_spawnp(&pid, argv[0], &actions, &attributes, cArguments, cEnvironment)
        guard rc == 0 else { throw AgentError.system("posix_spawn \(argv[0])", errno: rc) }
        return pid
    }
}
