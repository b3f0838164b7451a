import NIOCore

/// Runs tasks on a NIO event loop: under `withTaskExecutorPreference(EventLoopTaskExecutor(eventLoop:))`
/// a loop of `send` calls, the write and the reply handling all stay on the connection's thread,
/// with no thread wake-up per command. Worth it on hot paths; the client works without it.
///
/// ```swift
/// let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
/// let redis = RedisClient(configuration: config, eventLoopGroup: group)
/// try await withTaskExecutorPreference(EventLoopTaskExecutor(eventLoop: group.next())) {
///     for job in jobs { try await redis.send("RPUSH", "queue", job) }
/// }
/// ```
/// Never block inside such a task: it would stall the connections of that event loop.
public final class EventLoopTaskExecutor: TaskExecutor, Sendable {
    public let eventLoop: any EventLoop

    public init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute {
            job.runSynchronously(on: UnownedTaskExecutor(ordinary: self))
        }
    }
}
