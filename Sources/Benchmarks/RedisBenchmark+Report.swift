import Foundation

extension RedisBenchmark {
    func report(_ figures: Figures) {
        func median(_ values: [Double]) -> Double? {
            let sorted = values.filter { !$0.isNaN }.sorted()
            return sorted.isEmpty ? nil : sorted[sorted.count / 2]
        }
        func fmt(_ value: Double?, _ decimals: Int = 0) -> String {
            value.map { String(format: "%.\(decimals)f", $0) } ?? "-"
        }
        let pad: (String, Int) -> String = { text, width in text.count >= width ? text : text + String(repeating: " ", count: width - text.count) }
        /// The median ratio, and how many rounds met `target` (`higherIsBetter` decides the direction).
        func ratios(_ pairs: [Figures.Pair], ours transform: (Double) -> Double = { $0 }, target: Double, higherIsBetter: Bool) -> String {
            let values = pairs.map { transform($0.ours) / $0.theirs }.filter { $0.isFinite }
            let met = values.filter { higherIsBetter ? $0 >= target : $0 <= target }.count
            return fmt(median(values), 2) + "x" + "  (\(met)/\(values.count) rounds)"
        }
        output("")
        output(pad("test", 30) + pad("ours", 14) + pad("redis-benchmark", 18) + "ours/theirs: median of rounds (rounds meeting target)")
        for test in Self.throughputTests + ["GET -P 1"] {
            let pairs = figures.throughput[test] ?? []
            let label = test == "GET -P 1" ? "GET ops/s (-c 1 -P 1)" : "\(test) ops/s (-P \(options.pipeline))"
            output(pad(label, 30) + pad(fmt(median(pairs.map(\.ours))), 14) + pad(fmt(median(pairs.map(\.theirs))), 18)
                + ratios(pairs, target: 0.8, higherIsBetter: true))
        }
        // Ratios compare ours rounded the way redis-benchmark's figures are (see `redisBenchmarkBucketTop`):
        // exact figures against its rounded-up ones would flatter us by up to 7 us.
        func latencyRow(_ label: String, _ pairs: [Figures.Pair]) {
            let ours = median(pairs.map(\.ours))
            let shown = ours.map { fmt($0, 1) + " (" + fmt(Self.redisBenchmarkBucketTop($0), 0) + ")" } ?? "-"
            output(pad(label, 30) + pad(shown, 14) + pad(fmt(median(pairs.map(\.theirs))), 18)
                + ratios(pairs, ours: Self.redisBenchmarkBucketTop, target: 1.2, higherIsBetter: false))
        }
        for p in ["p50", "p95", "p99"] {
            latencyRow("GET latency \(p) (us)", figures.latency[p] ?? [])
        }
        for p in ["p50", "p95", "p99"] {
            latencyRow("  busy-poll off \(p) (us)", figures.sleeping[p] ?? [])
        }
        for p in ["p50", "p95", "p99"] {
            latencyRow("  bare NIO floor \(p) (us)", figures.floor[p] ?? [])
        }
        output("(throughput: higher is better, target ours/theirs >= 0.8; latency: lower is better, target <= 1.2)")
        output("(latency: redis-benchmark reports the top of an 8 us histogram bucket; in parentheses ours rounded the same way, which the ratio uses)")
        output("(ours: the caller's whole await, reply decoded; redis-benchmark: write to readable, before its read and parse; floor: write to channelRead)")
        output("(ours polls the socket for up to \(Int((options.replyBusyPoll.seconds * 1e6).rounded())) us after each write (replyBusyPoll); 'busy-poll off' and the floor sleep in epoll at once, as redis-benchmark does)")
    }

    /// The figure redis-benchmark would print for `micros`: its HDR histogram (lowest discernible value
    /// 10 us, 3 significant digits) has 8 us buckets up to 16 ms, then doubling, and reports a bucket's
    /// highest value. `--precision` only changes how many decimals its text output shows.
    static func redisBenchmarkBucketTop(_ micros: Double) -> Double {
        let value = Int(micros)  // it records whole microseconds
        var size = 8
        var limit = 2048 * 8
        while value >= limit {
            size *= 2
            limit *= 2
        }
        return Double(value / size * size + size - 1)
    }
}
