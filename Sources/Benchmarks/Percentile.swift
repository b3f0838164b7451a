/// Nearest-rank percentile (`p` in 0...100) of an ascending-sorted sample: the one definition every
/// benchmark reports, so figures from `bench redis`, `bench vm` and `bench worker` compare.
func nearestRankPercentile<T>(_ sorted: [T], _ p: Double) -> T? {
    guard !sorted.isEmpty else { return nil }
    let rank = Int((p / 100 * Double(sorted.count)).rounded(.up))
    return sorted[min(sorted.count - 1, max(0, rank - 1))]
}
