/// A counting semaphore for VM slots. The claim loop takes a slot before it claims a job, so the
/// worker never takes more jobs off the queue than it can run at once.
actor SlotPool {
    private var free: Int
    private let total: Int
    private var waiters: [CheckedContinuation<Bool, Never>] = []
    private var closed = false
    /// Wakes a drain when the last slot comes back, instead of it polling ``inUse``.
    private let released = Signal()

    init(slots: Int) {
        precondition(slots > 0, "a slot pool needs at least one slot")
        free = slots
        total = slots
    }

    /// Waits for a free slot; false when the pool was closed (shutdown) instead.
    func acquire() async -> Bool {
        if closed { return false }
        if free > 0 {
            free -= 1
            return true
        }
        return await withCheckedContinuation { waiters.append($0) }
    }

    /// Gives a slot back, handing it straight to the oldest waiter if there is one.
    func release() {
        if !waiters.isEmpty {
            waiters.removeFirst().resume(returning: true)
        } else {
            free = min(total, free + 1)
            if free == total { released.notify() }
        }
    }

    /// Waits until no slot is held, at most until `deadline`; returns whether none is.
    func waitUntilIdle(before deadline: ContinuousClock.Instant) async -> Bool {
        while inUse > 0, ContinuousClock.now < deadline, !Task.isCancelled {
            await released.wait(until: deadline)
        }
        return inUse == 0
    }

    /// Wakes every waiter with false and refuses further acquisitions.
    func close() {
        closed = true
        let pending = waiters
        waiters.removeAll()
        for waiter in pending { waiter.resume(returning: false) }
    }

    /// Slots currently held.
    var inUse: Int { total - free }
}
