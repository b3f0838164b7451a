import Logging
import RedisClient
import TestSupport

/// A client for `url` that fails fast: tests should not wait out production-sized retry budgets.
func makeClient(
    _ url: String,
    configure: (inout RedisClientConfiguration) -> Void = { _ in }
) throws -> RedisClient {
    var configuration = try RedisClientConfiguration(url: url)
    configuration.timeouts.command = .seconds(5)
    configuration.timeouts.connect = .seconds(2)
    configure(&configuration)
    var logger = Logger(label: "redis-test")
    logger.logLevel = .warning
    return RedisClient(configuration: configuration, logger: logger)
}

/// Runs `body` with a client and always closes it.
func withClient<T>(
    _ url: String,
    configure: (inout RedisClientConfiguration) -> Void = { _ in },
    _ body: (RedisClient) async throws -> T
) async throws -> T {
    let client = try makeClient(url, configure: configure)
    defer { client.close() }
    return try await body(client)
}
