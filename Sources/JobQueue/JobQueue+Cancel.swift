import Logging
import NIOCore
import RESP
import RedisClient

/// What the cancel channel tells a worker (``JobQueueBackend/cancelNotifications()``).
public enum CancelNotification: Sendable, Equatable {
    /// A platform asked to cancel job `id` (it may not be this worker's).
    case cancel(id: String)
    /// The channel is (again) subscribed: requests published while it was not were missed, so the worker reads the
    /// durable marks of the jobs it runs (``JobQueueBackend/cancelRequested(among:)``).
    case resubscribed
}

extension JobOutcome {
    /// The reason pushed after `failed` for a cancelled job, and its result's `verdict`.
    public static let cancelledReason = "cancelled"

    /// `failed` + `cancelled`, with `verdict` `cancelled` in the result (docs/wire-contract.md, "Cancelling a job").
    public static func cancelled(_ record: JobResultRecord = JobResultRecord()) -> JobOutcome {
        var record = record
        record.verdict = cancelledReason
        record.message = record.message ?? cancelledReason
        return .failed(reason: cancelledReason, result: record)
    }
}

// Cancelling jobs: a durable mark per job plus a PUBLISH so running jobs stop at once (docs/wire-contract.md).
extension JobQueue {
    /// The ids among `ids` whose cancel mark exists, in one round trip.
    public func cancelRequested(among ids: [String]) async throws -> Set<String> {
        guard !ids.isEmpty else { return [] }
        let marks = ids.map(configuration.cancelMark(for:))
        let values = try Self.decode(
            try await client.send(RedisCommand("MGET", arguments: marks)), as: [ByteBuffer?].self, from: "MGET")
        return Set(zip(ids, values).compactMap { $1 == nil ? nil : $0 })
    }

    /// Cancel requests as platforms publish them, on a subscription of its own (``RedisSubscription``) that
    /// reconnects by itself; ends when the consumer stops iterating.
    public nonisolated func cancelNotifications() -> AsyncStream<CancelNotification> {
        let subscription = RedisSubscription(
            configuration: client.configuration, channels: [configuration.cancelChannel], logger: logger)
        let logger = self.logger
        return AsyncStream(bufferingPolicy: .bufferingNewest(10_000)) { continuation in
            let forwarding = Task {
                for await event in subscription {
                    switch event {
                    case .subscribed(let connection):
                        if connection > 1 { logger.notice("cancel channel subscribed again after a lost connection") }
                        continuation.yield(.resubscribed)
                    case .message(let message):
                        let id = String(buffer: message.payload)
                        continuation.yield(.cancel(id: id))
                        await self.boundCancelMark(id)
                    }
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in
                forwarding.cancel()
                subscription.close()
            }
        }
    }

    /// Gives a mark the platform set without a TTL the status TTL (`EXPIRE NX` leaves a TTL it gave alone), so a
    /// mark for an id that never comes cannot live forever. Best effort: every worker hearing the id tries.
    func boundCancelMark(_ id: String) async {
        do {
            _ = try await command("EXPIRE", configuration.cancelMark(for: id), configuration.statusTTLSeconds, "NX", as: Int.self)
        } catch {
            logger.debug("could not bound a cancel mark's TTL", metadata: ["job_id": "\(id)", "error": "\(error)"])
        }
    }

    /// What a platform does to cancel job `id` (and what `codebench-worker cancel` runs): `SET <ns>:cancel:<id> 1
    /// EX <ttl>` and `PUBLISH <ns>:cancel <id>`, in one MULTI/EXEC. Returns how many workers heard the PUBLISH.
    ///
    /// Harmless for an unknown or finished id: the mark only ever cancels a job claimed before it expires.
    public func requestCancel(id: String, ttl: Duration = .seconds(24 * 3600)) async throws -> Int {
        let seconds = max(1, Int(ttl.components.seconds))
        let results = try await client.transaction([
            RedisCommand("SET", configuration.cancelMark(for: id), "1", "EX", seconds),
            RedisCommand("PUBLISH", configuration.cancelChannel, id),
        ])
        return try Self.decode(try results[1].get(), as: Int.self, from: "PUBLISH")
    }
}
