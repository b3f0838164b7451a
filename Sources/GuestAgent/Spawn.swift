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
        // dup2 runs in order: a source among the targets of an earlier dup2 would be clobbered.
        let targets = Int32(0)..<(3 + Int32(passing.count))
        guard ([stdin, stdout, stderr].filter { $0 > 2 } + passing).allSatisfy({ !targets.contains($0) }) || passing.isEmpty else {
            throw AgentError(.system, "descriptors to pass overlap their targets")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, stdin, 0)
        posix_spawn_file_actions_adddup2(&actions, stdout, 1)
        posix_spawn_file_actions_adddup2(&actions, stderr, 2)
        for (offset, fd) in passing.enumerated() { posix_spawn_file_actions_adddup2(&actions, fd, 3 + Int32(offset)) }

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
