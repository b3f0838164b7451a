import AgentProtocol
import Logging
import Synchronization

/// Keeps a few VMs booted ahead of demand, so a job starts on a VM whose agent has already said hello.
///
/// A driver in front of another. ``withVM(_:logger:_:)`` hands out a parked VM when the configuration
/// matches the pool's, and otherwise boots one through the base driver as usual. Every VM still serves
/// exactly one job: it is destroyed after the job, and ``run()`` boots a replacement.
///
/// Why: under QEMU's TCG even a snapshot restore takes ~0.16 s to the agent's hello, half of a short
/// job's latency. A restored VM has been re-seeded with its own entropy at its restore, so no two VMs
/// share random state.
///
/// Primed: before a VM is parked it runs ``warmUp`` (`true`), our own fixed request, never a job's. A
/// restored VM's QEMU starts with no translated code, and the first job of a VM spends most of its
/// time in TCG translating the agent's, the kernel's and the shell's paths (docs/snapshots.md, "The
/// job inside the guest"); the warm-up pays for that while the VM waits, so the job runs on translated
/// code. What the warm-up leaves in the guest is what any job leaves after the agent's clean-up: its
/// directory, cgroup and files are gone before the VM is parked (the warm-up prepares the next
/// request, and the agent cleans up before it answers such a request). A VM whose warm-up fails is
/// torn down and counted as a failed boot.
///
/// Safeguards:
/// - A parked VM whose agent connection has closed (the VMM died) is destroyed, not handed out.
/// - A VM parked longer than `maximumIdle` is replaced: its clock and page cache would age.
/// - Boot failures back off (1 s doubling to 30 s), so a broken host does not spin.
public final class WarmVMPool: MicroVMDriver, Sendable {
    public let base: any MicroVMDriver
    public let configuration: VMConfiguration
    public let size: Int
    public let maximumIdle: Duration
    /// Run in every VM before it is parked (see the type's comment); nil parks VMs as they boot.
    public let warmUp: RunRequest?
    private let logger: Logger
    private let observer: (@Sendable (Event) -> Void)?
    private let state = Mutex(State())
    private let refill: AsyncStream<Void>.Continuation
    private let refills: AsyncStream<Void>

    public var name: String { base.name }

    /// VMs parked right now.
    public var idleCount: Int { state.withLock { $0.idle.count } }
    /// Jobs that got a parked VM so far.
    public var handedOut: Int { state.withLock { $0.handedOut } }
    /// Parked VMs whose agent connection is still open.
    package var aliveIdleCount: Int { state.withLock { $0.idle.count { $0.session.isAlive } } }

    /// What the pool reports to an observer (for metrics).
    public enum Event: Sendable {
        /// The number of parked VMs changed to this.
        case idle(Int)
        /// A job got a parked VM.
        case handedOut
    }

    /// - Parameter observer: told of every change, for metrics, in order: it is called with the
    ///   pool's lock held, so it must be quick and must not call back into the pool.
    /// The default ``warmUp``: the shortest shell job, through every step a shell job takes.
    /// It also has the agent make the job's directory and cgroup while the VM waits.
    public static let primingRequest = RunRequest(id: "warm-vm-prime", preparingNextFor: nil, command: "true")

    public init(
        base: any MicroVMDriver, configuration: VMConfiguration, size: Int, maximumIdle: Duration = .seconds(600),
        warmUp: RunRequest? = WarmVMPool.primingRequest, logger: Logger, observer: (@Sendable (Event) -> Void)? = nil
    ) {
        self.base = base
        // The priming prepares the job's directory and cgroup for the limits these VMs' jobs keep.
        var warmUp = warmUp
        if warmUp?.prepareNextRequest == true, warmUp?.nextRequestLimits == nil { warmUp?.nextRequestLimits = configuration.expectedJobLimits }
        self.warmUp = warmUp
        self.observer = observer
        self.configuration = configuration
        self.size = max(0, size)
        self.maximumIdle = maximumIdle
        self.logger = logger
        (refills, refill) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    // MARK: Keeping VMs parked

    /// Boots VMs until `size` are parked or booting, and replaces each one used or lost, until the
    /// task is cancelled; then destroys the parked VMs and returns once they are gone. Run it once.
    public func run() async {
        await withDiscardingTaskGroup { group in
            refill.yield()
            for await _ in refills {
                if let delay = state.withLock({ $0.backoff.take() }) {
                    try? await Task.sleep(for: delay)
                }
                while let id = state.withLock({ $0.startBootIfNeeded(size: size) }) {
                    group.addTask { await self.hold(id) }
                }
            }
            // Cancelled: parked VMs go; VMs in use go when their job ends.
            let parked = state.withLock { state in
                defer { observer?(.idle(0)) }
                return state.stop()
            }
            for vm in parked { vm.release.resume() }
        }
    }

    /// One pooled VM's whole life: boot, park, wait for its job (or the end), tear down.
    private func hold(_ id: Int) async {
        let gone = Gate()
        let booted = Gate()
        let usage = VMUsageRecorder()
        defer {
            gone.open()
            refill.yield()
        }
        do {
            try await base.withVM(configuration, logger: logger, usage: usage.record) { session in
                if let warmUp { try await Self.prime(session, with: warmUp) }
                booted.open()
                await withTaskCancellationHandler {
                    await withCheckedContinuation { (release: CheckedContinuation<Void, Never>) in
                        let parked = Parked(id: id, session: session, parkedAt: .now, release: release, gone: gone, usage: usage)
                        let parkedNow = state.withLock { state in
                            guard let idle = state.park(parked) else { return false }
                            observer?(.idle(idle))
                            return true
                        }
                        if !parkedNow { release.resume() }
                    }
                } onCancel: {
                    // Only an idle VM is released here; one in use is released by its job.
                    let parked = state.withLock { state in
                        state.takeIdle(id: id).map { parked, idle in
                            observer?(.idle(idle))
                            return parked
                        }
                    }
                    parked?.release.resume()
                }
            }
        } catch {
            // A driver that throws after its body ran (a teardown error) did boot: only a failed boot
            // gives back its place among the booting and backs off.
            guard !booted.isOpen else {
                logger.warning("warm VM teardown failed", metadata: ["error": "\(error)"])
                return
            }
            let delay = state.withLock { $0.bootFailed() }
            if !(error is CancellationError) {
                logger.warning("warm VM failed to boot", metadata: ["error": "\(error)", "retry_in": "\(delay)"])
            }
        }
    }

    /// Runs `request` in a VM about to be parked; throws unless it ran as meant.
    private static func prime(_ session: any GuestSession, with request: RunRequest) async throws {
        let result = try await session.run(request, timeout: .seconds(30))
        guard result.verdict == .ok, result.exitCode == 0 else {
            throw VMError(.bootFailed, "the warm VM's warm-up ended \(result.verdict.rawValue): \(result.message ?? "no message")")
        }
    }

    // MARK: MicroVMDriver

    /// A warm VM's usage counts its boot, its priming and its time parked: all of it was for this job.
    public func withVM<T: Sendable>(
        _ configuration: VMConfiguration, logger: Logger, usage: @escaping @Sendable (VMUsage) -> Void,
        _ body: (any GuestSession) async throws -> T
    ) async throws -> T {
        let asked = ContinuousClock.now
        guard configuration == self.configuration, let parked = takeHealthyVM() else {
            return try await base.withVM(configuration, logger: logger, usage: usage, body)
        }
        defer { usage(parked.usage.usage) }
        logger.debug(
            "job starts on a warm VM",
            metadata: ["warm_vm": "\(parked.id)", "parked_boot_ms": "\(BootSteps.milliseconds(parked.session.bootDuration))"])
        do {
            let value = try await body(WarmSession(parked: parked.session, bootDuration: ContinuousClock.now - asked))
            await finish(parked)
            return value
        } catch {
            await finish(parked)
            throw error
        }
    }

    /// The oldest parked VM that is still alive and fresh; the others are released on the way.
    private func takeHealthyVM() -> Parked? {
        while let parked = takeOldest() {
            if parked.session.isAlive, ContinuousClock.now - parked.parkedAt < maximumIdle {
                state.withLock { state in
                    state.handedOut += 1
                    observer?(.handedOut)
                }
                // Boot the replacement now, not after the job: the next job may come before this one ends.
                refill.yield()
                return parked
            }
            logger.debug("discarding a warm VM", metadata: ["warm_vm": "\(parked.id)", "alive": "\(parked.session.isAlive)"])
            parked.release.resume()
        }
        return nil
    }

    private func takeOldest() -> Parked? {
        state.withLock { state in
            state.takeOldest().map { parked, idle in
                observer?(.idle(idle))
                return parked
            }
        }
    }

    /// Lets the VM's holder tear it down, and waits until it has: a VM never outlives its `withVM`.
    private func finish(_ parked: Parked) async {
        parked.release.resume()
        await parked.gone.wait()
    }

    // MARK: State

    private struct Parked: Sendable {
        let id: Int
        let session: any GuestSession
        let parkedAt: ContinuousClock.Instant
        let release: CheckedContinuation<Void, Never>
        let gone: Gate
        /// Set by the VM's holder once it is torn down, before `gone` opens.
        let usage: VMUsageRecorder
    }

    private struct Backoff {
        var next: Duration?
        var failures = 0

        mutating func take() -> Duration? {
            defer { next = nil }
            return next
        }
    }

    private struct State {
        var idle: [Parked] = []
        var booting = 0
        var nextID = 0
        var handedOut = 0
        var stopped = false
        var backoff = Backoff()

        /// An id for a new VM when fewer than `size` are parked or booting.
        mutating func startBootIfNeeded(size: Int) -> Int? {
            guard !stopped, idle.count + booting < size else { return nil }
            booting += 1
            nextID += 1
            return nextID
        }

        /// The new number of parked VMs; nil when the pool has stopped (the VM is then released at once).
        mutating func park(_ parked: Parked) -> Int? {
            booting -= 1
            backoff.failures = 0
            guard !stopped else { return nil }
            idle.append(parked)
            return idle.count
        }

        mutating func bootFailed() -> Duration {
            booting -= 1
            backoff.failures += 1
            let delay = Duration.seconds(min(30, 1 << min(backoff.failures - 1, 5)))
            backoff.next = delay
            return delay
        }

        /// The oldest parked VM and how many remain.
        mutating func takeOldest() -> (Parked, Int)? {
            guard !idle.isEmpty else { return nil }
            return (idle.removeFirst(), idle.count)
        }

        mutating func takeIdle(id: Int) -> (Parked, Int)? {
            guard let index = idle.firstIndex(where: { $0.id == id }) else { return nil }
            return (idle.remove(at: index), idle.count)
        }

        mutating func stop() -> [Parked] {
            stopped = true
            defer { idle = [] }
            return idle
        }
    }
}

/// A one-way latch: ``wait()`` returns once ``open()`` has been called.
final class Gate: Sendable {
    private let state = Mutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func open() {
        let waiters = state.withLock { state in
            state.open = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    var isOpen: Bool { state.withLock { $0.open } }

    func wait() async {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state in
                if state.open { return true }
                state.waiters.append(continuation)
                return false
            }
            if ready { continuation.resume() }
        }
    }
}
