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

    /// The size the directory's tmpfs is made with: the protocol's default memory limit, which most
    /// requests keep; another limit costs one remount.
    static let defaultSizeBytes = ResourceLimits().memoryBytes

    /// `environment`: what a step in `directory` gets (``JobRunner/stepEnvironment(directory:)``).
    static func make(
        number: Int, sandbox: Sandbox, reaper: ChildReaper, shell: String, environment: (String) -> [String]
    ) throws -> PreparedJob {
        let directory = try WorkDirectory.create(number: number, sizeBytes: defaultSizeBytes, sandbox: sandbox)
        guard sandbox.confined else { return PreparedJob(number: number, directory: directory, cgroup: nil, shell: nil) }
        let cgroup: CGroup
        do {
            // The protocol's default limits, which most requests keep: a request with other limits
            // writes only those (CGroup.adopting; CGroup.create for a step that spawns).
            let limits = ResourceLimits()
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
            return PreparedJob(number: number, directory: directory, cgroup: cgroup, shell: prepared)
        } catch {
            // The request still gets its directory and cgroup; its shell is spawned as usual.
            Log.error("starting the next request's shell failed: \(error)")
            return PreparedJob(number: number, directory: directory, cgroup: cgroup, shell: nil)
        }
    }

    /// The directory sized for a request whose memory limit is `sizeBytes`; nil when it cannot be
    /// (the caller removes it and makes a new one).
    func directory(sizedFor sizeBytes: Int) -> WorkDirectory? {
        guard directory.mounted, WorkDirectory.tmpfsSize(sizeBytes) != WorkDirectory.tmpfsSize(Self.defaultSizeBytes) else {
            return directory
        }
        return directory.resized(to: sizeBytes) ? directory : nil
    }


}
