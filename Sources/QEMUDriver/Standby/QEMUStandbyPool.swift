import Logging
import MicroVM
import Synchronization

/// QEMU processes spawned ahead of the copy-on-write restores they will become
/// (docs/snapshots.md, "Standby QEMUs").
///
/// Why: of a restored VM's start, the jail's launcher and QEMU's own initialisation come before any
/// guest code runs and do not depend on the job (~60 ms of ~140 under TCG here). A standby QEMU has
/// done them: it runs jailed like any VM's, waits with `-incoming defer` and holds the snapshot's
/// sealed memory and state descriptors, and has never run a guest instruction. The VM asked for
/// next adopts it and loads the state (``QEMUDriver/adoptStandby(_:snapshot:)``). Each standby
/// becomes exactly one VM, so every job still gets a QEMU of its own that no other guest ran in.
///
/// Standbys exist only while ``run()`` runs: before, and once it is cancelled, nothing is spawned
/// ahead and nothing is left parked.
final class QEMUStandbyPool: Sendable {
    /// What a standby was spawned for: a VM of this shape restored from this snapshot directory.
    struct Key: Hashable, Sendable {
        var vm: VMConfiguration
        var snapshot: String
    }

    /// One spawned QEMU waiting for its state.
    struct Parked: Sendable {
        var key: Key
        var resources: VMResources
        var agentSocketPath: String
        /// The snapshot's memory record (`memory.id`) when its descriptors were opened: a snapshot
        /// made again since is another snapshot, and the standby goes.
        var snapshotIdentity: String
    }

    private struct State {
        var open = false
        var parked: [Parked] = []
        var spawning = 0
        var adopted = 0
    }

    /// Standbys parked and being spawned at most, over all keys.
    let capacity: Int
    let logger: Logger
    private let state = Mutex(State())

    init(capacity: Int, logger: Logger = Logger(label: "codebench.qemu.standby")) {
        self.capacity = capacity
        self.logger = logger
    }

    var parkedCount: Int { state.withLock { $0.parked.count } }
    /// The process ids of the parked standbys' VMM processes (QEMU, or a jailed QEMU's launcher).
    var parkedProcessIDs: [Int32] { state.withLock { $0.parked.compactMap { $0.resources.process?.pid } } }
    /// VMs that started on a standby so far.
    var adoptedCount: Int { state.withLock { $0.adopted } }

    /// Keeps standbys until the calling task is cancelled, then destroys every parked one and waits
    /// for the spawns in flight, which destroy their own.
    func run() async {
        state.withLock { $0.open = true }
        while !Task.isCancelled { try? await Task.sleep(for: .seconds(3600)) }
        // Not cancellable: teardown always completes.
        await Task { await self.close() }.value
    }

    private func close() async {
        let parked = state.withLock { state in
            state.open = false
            defer { state.parked = [] }
            return state.parked
        }
        for standby in parked { await standby.resources.destroy(logger: logger) }
        while state.withLock({ $0.spawning > 0 }) { try? await Task.sleep(for: .milliseconds(5)) }
    }

    /// A live standby for `key` spawned from the snapshot whose record is now `identity`, if one is
    /// parked, and the parked standbys that can never be adopted (their QEMU died, or their snapshot
    /// was made again), which the caller destroys.
    func take(_ key: Key, identity: String?) -> (standby: Parked?, stale: [Parked]) {
        state.withLock { state in
            var stale: [Parked] = []
            state.parked.removeAll { standby in
                let dead = !Self.isRunning(standby.resources.process)
                let remade = standby.key.snapshot == key.snapshot && standby.snapshotIdentity != identity
                if dead || remade { stale.append(standby) }
                return dead || remade
            }
            guard let index = state.parked.firstIndex(where: { $0.key == key }) else { return (nil, stale) }
            state.adopted += 1
            return (state.parked.remove(at: index), stale)
        }
    }

    /// Whether `process` has neither been reaped nor died unreaped (a zombie). A standby whose QEMU
    /// dies after this check fails its VM's state load like any restore that lost its QEMU.
    private static func isRunning(_ process: VMMProcess?) -> Bool {
        guard let process, process.exitStatus == nil else { return false }
        guard let stat = ProcessStat.of(pid: process.pid) else { return false }
        return stat.state != "Z"
    }

    /// Spawns one standby for `key` in the background when the pool is open and has room; parked
    /// standbys of other keys make room (a new image or VM shape leaves the old ones unused).
    func refill(_ key: Key, spawn: @escaping @Sendable () async throws -> Parked) {
        let evicted: [Parked]? = state.withLock { state in
            guard state.open else { return nil }
            let forKey = state.parked.filter { $0.key == key }.count
            guard forKey + state.spawning < capacity else { return nil }
            var evicted: [Parked] = []
            while state.parked.count + state.spawning >= capacity, let other = state.parked.firstIndex(where: { $0.key != key }) {
                evicted.append(state.parked.remove(at: other))
            }
            guard state.parked.count + state.spawning < capacity else {
                state.parked.append(contentsOf: evicted)
                return nil
            }
            state.spawning += 1
            return evicted
        }
        guard let evicted else { return }
        let logger = self.logger
        Task {
            for standby in evicted { await standby.resources.destroy(logger: logger) }
            var spawned: Parked?
            do {
                spawned = try await spawn()
            } catch {
                logger.debug("spawning a standby QEMU failed", metadata: ["error": "\(error)"])
            }
            let kept = spawned.map { standby in
                state.withLock { state in
                    guard state.open else { return false }
                    state.parked.append(standby)
                    return true
                }
            } ?? false
            if !kept, let spawned { await spawned.resources.destroy(logger: logger) }
            state.withLock { $0.spawning -= 1 }
        }
    }
}
