/// Bounds that keep a hostile or broken peer from exhausting memory or stack.
/// The defaults accept everything Redis sends in practice.
public struct RESPDecodingLimits: Hashable, Sendable {
    /// Maximum nesting of aggregates (arrays, maps, sets, pushes, attributes).
    public var maxDepth: Int
    /// Maximum length of a bulk string, bulk error or verbatim string payload (Redis' own `proto-max-bulk-len` default is 512 MiB).
    public var maxBulkLength: Int
    /// Maximum number of elements one aggregate may announce (a map counts its pairs twice).
    public var maxAggregateCount: Int
    /// Maximum length of a line (simple string, simple error, number), excluding `\r\n`.
    public var maxLineLength: Int

    public init(
        maxDepth: Int = 64,
        maxBulkLength: Int = 512 * 1024 * 1024,
        maxAggregateCount: Int = 16 * 1024 * 1024,
        maxLineLength: Int = 1024 * 1024
    ) {
        self.maxDepth = maxDepth
        self.maxBulkLength = maxBulkLength
        self.maxAggregateCount = maxAggregateCount
        self.maxLineLength = maxLineLength
    }

    public static let `default` = RESPDecodingLimits()
}
