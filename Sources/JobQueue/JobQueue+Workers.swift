import Logging
import RESP
import RedisClient

extension JobQueue {
    /// Publishes `json` (the worker's ``languagesKey`` document) without expiry: workers sharing a queue
    /// boot the same image, so the last one to start is as right as the first.
    public func publishLanguages(_ json: String) async throws {
        _ = try await command("SET", configuration.languagesKey, json, as: String?.self)
    }

    /// Sets what every later heartbeat publishes about this worker (``QueueConfiguration/workerInfoKey(for:)``).
    public func describe(_ info: WorkerInfo) {
        workerInfo = info
    }

    /// Marks this worker alive for ``QueueConfiguration/heartbeatTTL`` and registers it in the workers set.
    public func heartbeat() async throws {
        _ = try await integer(
            script: QueueScripts.heartbeat,
            keys: [
                configuration.heartbeatKey(for: configuration.workerID), configuration.workersSet,
                configuration.workerInfoKey(for: configuration.workerID),
            ],
            arguments: [String(Self.unixMilliseconds()), configuration.heartbeatTTLMilliseconds, configuration.workerID]
                + (workerInfo?.fields(heartbeatTTLMilliseconds: configuration.heartbeatTTLMilliseconds) ?? []))
    }

    /// One reaper pass: if this worker gets the reaper lock, every registered worker whose heartbeat has expired
    /// has its processing list returned to the head of the intake (or dead-lettered after
    /// ``QueueConfiguration/maxDeliveries``), atomically per worker.
    public func reapDeadWorkers() async throws -> ReapReport {
        let lock = configuration.reaperLock
        let owner = configuration.workerID
        // SET NX answers OK, or null when another worker holds the lock.
        let acquired = try await command("SET", lock, owner, "NX", "PX", configuration.reaperLockTTLMilliseconds, as: String?.self)
        guard acquired != nil else { return ReapReport(acquiredLock: false) }
        var report = ReapReport(acquiredLock: true)
        do {
            for worker in try await candidateWorkers() {
                let counts = try await integers(
                    script: QueueScripts.reap,
                    keys: [
                        configuration.workersSet, configuration.heartbeatKey(for: worker),
                        configuration.processingList(for: worker), configuration.intakeList,
                        configuration.deliveriesHash, configuration.deadLetterList, configuration.claimedIDsHash,
                        configuration.deadLetterRecordsHash,
                    ],
                    arguments: [
                        worker, configuration.maxDeliveries, configuration.statusTTLSeconds,
                        configuration.statusKeyPrefix, configuration.markerPrefix, configuration.eventsChannelPrefix,
                        owner, Self.unixMilliseconds(), configuration.inFlightPrefix,
                    ])
                guard counts.count == 3, counts[0] >= 0 else { continue }
                report.deadWorkers.append(worker)
                report.requeued += counts[0]
                report.deadLettered += counts[1]
                report.alreadyFinished += counts[2]
                logger.warning(
                    "reaped a dead worker",
                    metadata: [
                        "dead_worker": "\(worker)", "requeued": "\(counts[0])", "dead_lettered": "\(counts[1])",
                        "already_finished": "\(counts[2])",
                    ])
            }
        } catch {
            _ = try? await integer(script: QueueScripts.releaseLock, keys: [lock], arguments: [owner])
            throw error
        }
        _ = try await integer(script: QueueScripts.releaseLock, keys: [lock], arguments: [owner])
        return report
    }

    /// Registered workers, plus owners of processing lists that are not registered (a worker unregistered by a
    /// reaper while it was only slow, which then claimed a job and died before its next heartbeat).
    private func candidateWorkers() async throws -> [String] {
        var workers = Set(try await command("SMEMBERS", configuration.workersSet, as: [String].self))
        let now = ContinuousClock.now
        if let last = lastOrphanScan, last.duration(to: now) < configuration.orphanScanInterval {
            workers.remove(configuration.workerID)
            return workers.sorted()
        }
        lastOrphanScan = now
        workers.formUnion(try await processingListOwners())
        workers.remove(configuration.workerID)
        return workers.sorted()
    }

    /// The workers that own a processing list, registered or not (one SCAN of the keyspace).
    func processingListOwners() async throws -> Set<String> {
        var workers: Set<String> = []
        let prefix = configuration.processingList(for: "")
        var cursor = "0"
        repeat {
            let parts = try await command("SCAN", cursor, "MATCH", prefix + "*", "COUNT", 1000, "TYPE", "list", as: [RESPToken].self)
            guard parts.count == 2 else {
                throw JobQueueError(.unexpectedReply, "SCAN replied \(parts.count) elements instead of a cursor and keys")
            }
            cursor = try Self.decode(parts[0], as: String.self, from: "SCAN")
            for key in try Self.decode(parts[1], as: [String].self, from: "SCAN") where key.hasPrefix(prefix) {
                workers.insert(String(key.dropFirst(prefix.count)))
            }
        } while cursor != "0"
        return workers
    }

    /// Heartbeats and reaper passes until the task is cancelled; meant to run beside the claim loop.
    /// Redis errors are logged and retried on the next tick, so a Redis restart does not stop it.
    public func runMaintenance() async {
        let clock = ContinuousClock()
        let heartbeatEvery = configuration.heartbeatTTL / 3
        var nextHeartbeat = clock.now
        var nextReap = clock.now
        while !Task.isCancelled {
            do {
                // Each schedule advances before its call, so a failing Redis is retried at the pace
                // of that schedule, not in a tight loop.
                if clock.now >= nextHeartbeat {
                    nextHeartbeat = clock.now.advanced(by: heartbeatEvery)
                    try await heartbeat()
                }
                if clock.now >= nextReap {
                    nextReap = clock.now.advanced(by: configuration.reaperInterval)
                    _ = try await reapDeadWorkers()
                }
            } catch {
                // Cancelled: the worker is stopping, which is not a failure worth an error line.
                if Task.isCancelled { break }
                logger.error("queue maintenance failed; retrying", metadata: ["error": "\(error)"])
            }
            // Two schedules on one loop: the reaper keeps its own interval even when it is shorter
            // than the heartbeat's.
            try? await Task.sleep(until: min(nextHeartbeat, nextReap), clock: clock)
        }
    }

    /// Leaves the fleet cleanly: jobs still held go back to the intake head, the heartbeat and registration go.
    /// Returns how many jobs were given back.
    @discardableResult
    public func shutdown() async throws -> Int {
        let returned = try await integer(
            script: QueueScripts.requeueAll, keys: [processingList, configuration.intakeList, configuration.claimedIDsHash],
            arguments: ["", configuration.workerID, configuration.inFlightPrefix])
        _ = try await command(
            "DEL", configuration.heartbeatKey(for: configuration.workerID), configuration.workerInfoKey(for: configuration.workerID),
            as: Int.self)
        _ = try await command("SREM", configuration.workersSet, configuration.workerID, as: Int.self)
        if returned > 0 { logger.notice("returned unfinished jobs to the intake", metadata: ["count": "\(returned)"]) }
        return returned
    }
}
