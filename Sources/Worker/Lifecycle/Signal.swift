import Synchronization

/// Wakes waiters when something they wait for may have happened: a level-triggered, cancellable
/// notification for the worker's event-driven waits (a write kept for retry, a slot freed, stop).
///
/// `wait(until:)` returns at the next ``notify()`` (or at once if one came while nobody waited), when
/// the deadline passes, or when the waiting task is cancelled, whichever comes first. Callers re-check
/// their condition after every return: a signal says "look again", not what changed.
final class Signal: Sendable {
    private struct Waiter {
        let id: UInt64
        let continuation: CheckedContinuation<Void, Never>
    }

    private struct State {
        var nextID: UInt64 = 0
        var waiters: [Waiter] = []
        /// Waits cancelled before their continuation was registered: registering one of these resumes it at once.
        var cancelledEarly: Set<UInt64> = []
        /// A notification nobody was waiting for: the next wait returns at once, so a notify that lands
        /// between a caller's check and its wait is not lost.
        var notified = false
    }

    private let state = Mutex(State())

    /// Wakes every current waiter.
    func notify() {
        let woken = state.withLock { state in
            defer { state.waiters.removeAll() }
            state.notified = state.waiters.isEmpty
            return state.waiters
        }
        for waiter in woken { waiter.continuation.resume() }
    }

    /// Waits for the next ``notify()``, at most until `deadline` (nil: no deadline).
    func wait(until deadline: ContinuousClock.Instant? = nil) async {
        let id = state.withLock { state in
            defer { state.nextID += 1 }
            return state.nextID
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await withTaskCancellationHandler {
                    await withCheckedContinuation { continuation in
                        // Checked and registered under one lock, so a cancellation or a notify cannot slip between.
                        let ready = self.state.withLock { state -> Bool in
                            if state.cancelledEarly.remove(id) != nil { return true }
                            if state.notified {
                                state.notified = false
                                return true
                            }
                            state.waiters.append(Waiter(id: id, continuation: continuation))
                            return false
                        }
                        if ready { continuation.resume() }
                    }
                } onCancel: {
                    self.resume(id)
                }
            }
            if let deadline {
                group.addTask { try? await Task.sleep(until: deadline, clock: .continuous) }
            }
            await group.next()
            group.cancelAll()
        }
    }

    private func resume(_ id: UInt64) {
        let waiter = state.withLock { state -> Waiter? in
            guard let index = state.waiters.firstIndex(where: { $0.id == id }) else {
                state.cancelledEarly.insert(id)
                return nil
            }
            return state.waiters.remove(at: index)
        }
        waiter?.continuation.resume()
    }
}
