/// Human wording for limits in verdict messages: "2 s", "1.5 s", "250 ms", "64 MiB".
enum Format {
    static func duration(milliseconds: Int) -> String {
        if milliseconds < 1000 { return "\(milliseconds) ms" }
        if milliseconds % 1000 == 0 { return "\(milliseconds / 1000) s" }
        let tenths = (milliseconds + 50) / 100
        if tenths * 100 == milliseconds { return "\(tenths / 10).\(tenths % 10) s" }
        let hundredths = milliseconds / 10
        return "\(hundredths / 100).\(hundredths % 100 < 10 ? "0" : "")\(hundredths % 100) s"
    }

    static func bytes(_ count: Int) -> String {
        let units: [(Int, String)] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")]
        for (size, name) in units where count >= size {
            if count % size == 0 { return "\(count / size) \(name)" }
            let tenths = count * 10 / size
            return "\(tenths / 10).\(tenths % 10) \(name)"
        }
        return "\(count) B"
    }
}
