/// Parses what cgroup files hold, on their bytes. Why not `String.split` and `Int(_:)`: in a VM just
/// restored from a snapshot every line of code runs for the first time and is translated by TCG
/// first, and these files are read for every job (cpu.stat, memory.events, memory.peak); a loop over
/// bytes is a small fraction of the generic string code it replaces.
enum CGroupFile {
    /// The number after `key ` on a line of a flat-keyed file ("key value\n" lines); nil when the key
    /// is absent or its value is not a decimal number.
    static func statistic(_ key: [UInt8], in bytes: [UInt8]) -> Int? {
        var lineStart = 0
        while lineStart < bytes.count {
            var lineEnd = lineStart
            while lineEnd < bytes.count && bytes[lineEnd] != UInt8(ascii: "\n") { lineEnd += 1 }
            let valueStart = lineStart + key.count + 1
            if valueStart <= lineEnd, bytes[valueStart - 1] == UInt8(ascii: " "), bytes[lineStart..<(valueStart - 1)].elementsEqual(key) {
                return number(bytes[valueStart..<lineEnd])
            }
            lineStart = lineEnd + 1
        }
        return nil
    }

    /// A non-negative decimal number, with whitespace around it allowed; nil for anything else (`max`)
    /// or a number too large for `Int`.
    static func number(_ bytes: ArraySlice<UInt8>) -> Int? {
        var value = 0
        var digits = 0
        var ended = false
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                guard !ended else { return nil }
                let (times, overflowed) = value.multipliedReportingOverflow(by: 10)
                let (sum, overflowedAgain) = times.addingReportingOverflow(Int(byte - UInt8(ascii: "0")))
                guard !overflowed && !overflowedAgain else { return nil }
                value = sum
                digits += 1
            case UInt8(ascii: " "), UInt8(ascii: "\n"), UInt8(ascii: "\t"):
                if digits > 0 { ended = true }
            default:
                return nil
            }
        }
        return digits > 0 ? value : nil
    }
}
