import JobQueue
import Logging
import RedisClient

/// Returns to the intake the entries of this worker's processing list that no job task holds.
///
/// They appear when the connection dies after BLMOVE moved a job but before the claim's reply
/// arrived: the job is safe in our processing list, but nobody runs it, and while this worker
/// lives the reaper will not touch it. Run after Redis comes back, with an empty outbox (results
/// still waiting there belong to jobs that are legitimately in the list).
struct OrphanRecovery: Sendable {
    let client: RedisClient
    let queue: QueueConfiguration
    let inFlight: InFlightJobs
    let logger: Logger

    /// ARGV: the payloads held in flight. Copies in the processing list beyond those are moved to the
    /// intake head. One script, so a job finishing meanwhile cannot be moved by mistake.
    private static let giveBack = RedisScript("""
        local held = {}
        for i = 1, #ARGV do held[ARGV[i]] = (held[ARGV[i]] or 0) + 1 end
        local seen, orphans = {}, {}
        for _, payload in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
          seen[payload] = (seen[payload] or 0) + 1
          if seen[payload] > (held[payload] or 0) then table.insert(orphans, payload) end
        end
        for _, payload in ipairs(orphans) do
          redis.call('LREM', KEYS[1], 1, payload)
          redis.call('LPUSH', KEYS[2], payload)
        end
        return #orphans
        """)

    /// How many orphans went back to the intake.
    func recover() async throws -> Int {
        let processing = queue.processingList(for: queue.workerID)
        let token = try await client.evalScript(
            Self.giveBack, keys: [processing, queue.intakeList], arguments: inFlight.all)
        let returned = token.int ?? 0
        if returned > 0 {
            logger.warning("returned jobs orphaned by a lost claim reply to the intake", metadata: ["count": "\(returned)"])
        }
        return returned
    }
}
