import AgentProtocol

/// What a snapshot's template runs before it is saved, after the driver's warm-up command
/// (``BootableVMM/snapshotWarmup``), and how that goes into the snapshot's key.
public enum TemplateWarmup {
    /// `true`, through the shell the warm-up prepared, preparing the next one. Why: a restored VM's
    /// first shell job would otherwise run code the template never ran (the agent's path through a
    /// prepared shell, bash's `eval` and exit), and pages of the agent and of bash that never ran are
    /// not in the template's memory at all: a clone reads them from its disk in the middle of its job
    /// (a major fault, and the block layer's first run under TCG, 15-25 ms each; docs/snapshots.md,
    /// "The job inside the guest"). What it leaves: a finished job, cleaned up, and the directory,
    /// cgroup and shell of each of the next `jobs` requests (``RunRequest/preparedRequests``): a
    /// restored VM's job uses the first; with two, a warm VM's priming (``WarmVMPool/primingRequest``)
    /// uses the first and its job the second, so that no primed VM spawns a shell before its job.
    /// It also starts the image's fork servers (``RunRequest/prepareForkServers``): a restored VM's
    /// Python program is forked from an interpreter that has started already (docs/snapshots.md,
    /// "Warm interpreters").
    static func shellJob(preparingFor limits: ResourceLimits?, jobs: Int, forkServers: Bool) -> RunRequest {
        var request = RunRequest(id: "snapshot-shell-job", preparingNextFor: limits, command: "true")
        if jobs != 1 { request.preparedRequests = jobs }
        request.prepareForkServers = forkServers
        return request
    }

    /// The snapshot key's lines for a template whose warm-up command is `warmup` (nil: none, and then
    /// no shell job either, as nothing prepared a shell), whose next `jobs` jobs are prepared for
    /// `limits`, and whose shell job starts the fork servers or not: another procedure makes another
    /// snapshot.
    public static func key(_ warmup: String?, preparingFor limits: ResourceLimits?, jobs: Int, forkServers: Bool) -> [String] {
        guard let warmup else { return ["warmup -"] }
        let prepared = limits.map { "memory \($0.memoryBytes) processes \($0.maxProcesses)" } ?? "the protocol's defaults"
        let shellJob = "then a shell job: true" + (forkServers ? ", starting the image's fork servers" : "")
        return ["warmup " + warmup, shellJob, (jobs == 1 ? "next job" : "next \(jobs) jobs") + " prepared for " + prepared]
    }
}

extension RunRequest {
    /// A shell command of ours (a template's warm-up and shell job, a warm VM's priming) that has the
    /// agent prepare the next request's directory, cgroup and shell for `limits` before it answers
    /// (``prepareNextRequest``, ``nextRequestLimits``; nil: the protocol's defaults).
    init(id: String, preparingNextFor limits: ResourceLimits?, command: String) {
        self.init(id: id, workload: .shell(command: command))
        prepareNextRequest = true
        nextRequestLimits = limits
    }
}
