import NIOCore
import RedisClient

// Priorities: several intake lists, taken in order (docs/reliability.md, "Priorities").
extension JobQueue {
    /// Moves the next payload into this worker's processing list, from the first non-empty intake list, waiting at
    /// most `timeout`. With one intake list (the default) this is today's single BLMOVE.
    ///
    /// Redis has no blocking move from several lists, so with more than one: an atomic script takes the head of
    /// the first non-empty list (``QueueScripts/claimFirst``); when all are empty the worker blocks on the first
    /// (highest priority) list for at most ``QueueConfiguration/intakePollInterval`` and then looks again. A job
    /// pushed onto the first list wakes an idle worker at once, one pushed onto a later list within the interval.
    func nextPayload(timeout: Duration) async throws -> [UInt8]? {
        let intakes = configuration.intakeLists
        guard intakes.count > 1 else { return try await blockingMove(from: configuration.intakeList, timeout: timeout) }
        let moved = try Self.decode(
            try await client.evalScript(QueueScripts.claimFirst, keys: [processingList] + intakes), as: ByteBuffer?.self,
            from: "EVALSHA")
        if let moved { return Array(moved.readableBytesView) }
        return try await blockingMove(from: intakes[0], timeout: min(timeout, configuration.intakePollInterval))
    }
}
