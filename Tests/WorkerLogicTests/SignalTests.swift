import Testing

@testable import Worker

/// The worker's event-driven waits (outbox retries, drain, claim backoff) rest on ``Signal``: a notify
/// must never be lost, and a wait must end at its deadline or on cancellation.
@Suite("Signal")
struct SignalTests {
    @Test func aNotifyBeforeTheWaitIsNotLost() async {
        let signal = Signal()
        signal.notify()
        let start = ContinuousClock.now
        await signal.wait(until: .now + .seconds(30))
        #expect(ContinuousClock.now - start < .seconds(30))
    }

    @Test func aWaitEndsAtItsDeadlineWithoutANotify() async {
        let signal = Signal()
        let deadline = ContinuousClock.now + .milliseconds(50)
        await signal.wait(until: deadline)
        #expect(ContinuousClock.now >= deadline)
    }

    @Test func aNotifyWakesEveryWaiter() async {
        let signal = Signal()
        let finished = await withTaskGroup(of: Void.self) { group in
            for _ in 0..<3 { group.addTask { await signal.wait() } }
            // Each notify ends at least one wait: every waiter already registered, or else the next one to
            // register takes the pending notification. So this loop cannot strand a waiter.
            var finished = 0
            while finished < 3 {
                signal.notify()
                if await group.next() != nil { finished += 1 }
            }
            return finished
        }
        #expect(finished == 3)
    }

    @Test func cancellingAWaitEndsIt() async {
        let signal = Signal()
        let waiter = Task { await signal.wait() }
        waiter.cancel()
        await waiter.value
        #expect(waiter.isCancelled)
    }

    @Test func aStopFlagCutsABackoffShort() async {
        let stop = StopFlag()
        let start = ContinuousClock.now
        async let slept: Void = stop.sleep(until: .now + .seconds(30))
        stop.set()
        await slept
        #expect(ContinuousClock.now - start < .seconds(30))
    }
}
