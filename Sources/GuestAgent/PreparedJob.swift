import AgentProtocol
import Glibc

/// The next request's work directory and cgroup, made ahead of it (``RunRequest/prepareNextRequest``).
///
/// Why: a snapshot's template makes them before it is saved, so every VM restored from it finds them
/// ready, and a primed warm VM makes them while it waits for its job. In a VM just restored, making
/// them costs ~20 ms, nearly all of it QEMU translating the kernel's mount and cgroup paths for the
/// first time (docs/snapshots.md, "The job inside the guest"). Sharing them is safe: every clone has
/// its own copy of the template's memory, so of the (empty) directory and cgroup too.
struct PreparedJob {
    /// The request number (``JobRunner``'s count) they are for; any other request makes its own.
    let number: Int
    let directory: WorkDirectory
    /// Nil when jobs run unconfined.
    let cgroup: CGroup?
    /// Nil when jobs run unconfined or it could not be started.
    let shell: PreparedShell?
    /// The memory limit the directory's tmpfs is sized for; a request with another costs one remount.
    let sizeBytes: Int

    /// Made for a request with `limits` (the host's ``RunRequest/nextRequestLimits``, else the
    /// protocol's defaults): the limits most requests keep, so that they need no remount and no
    /// cgroup write. `environment`: what a step in `directory` gets (``JobRunner/stepEnvironment(directory:)``).
    static func make(
        number: Int, limits: ResourceLimits, sandbox: Sandbox, reaper: ChildReaper, shell: String, environment: (String) -> [String]
    ) throws -> PreparedJob {
        let sizeBytes = limits.memoryBytes
        let directory = try WorkDirectory.create(number: number, sizeBytes: sizeBytes, sandbox: sandbox)
        guard sandbox.confined else { return PreparedJob(number: number, directory: directory, cgroup: nil, shell: nil, sizeBytes: sizeBytes) }
        let cgroup: CGroup
        do {
            // A request with other limits writes only those (CGroup.adopting; CGroup.create for a step that spawns).
            cgroup = try CGroup.create(
                name: "job-\(number)", limits: .init(memoryBytes: limits.memoryBytes, maxProcesses: limits.maxProcesses))
        } catch {
            directory.remove()
            throw error
        }
        do {
            let prepared = try PreparedShell.start(
                shell: shell, environment: environment(directory.path), directory: directory.path, cgroup: cgroup, sandbox: sandbox,
                reaper: reaper, label: "job-\(number)")
            return PreparedJob(number: number, directory: directory, cgroup: cgroup, shell: prepared, sizeBytes: sizeBytes)
        } catch {
            // The request still gets its directory and cgroup; its shell is spawned as usual.
            Log.error("starting the next request's shell failed: \(error)")
            return PreparedJob(number: number, directory: directory, cgroup: cgroup, shell: nil, sizeBytes: sizeBytes)
        }
    }

    /// The directory sized for a request whose memory limit is `sizeBytes`; nil when it cannot be
    /// (the caller removes it and makes a new one).
    func directory(sizedFor sizeBytes: Int) -> WorkDirectory? {
        guard directory.mounted, WorkDirectory.tmpfsSize(sizeBytes) != WorkDirectory.tmpfsSize(self.sizeBytes) else {
            return directory
        }
        return directory.resized(to: sizeBytes) ? directory : nil
    }
}
