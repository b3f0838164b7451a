/// Text that came from the guest, made fit for a host log line or a job's `failed` reason.
///
/// Nothing the guest writes is trusted: an agent's error message or a result's id could be megabytes
/// long or carry terminal escape sequences and forged log lines. Quoted guest text is cut to
/// ``maximumScalars`` and every control character becomes `\u{..}`.
enum GuestText {
    /// How much guest text a host message quotes.
    static let maximumScalars = 256

    static func quoted(_ text: String) -> String {
        var out = ""
        var count = 0
        for scalar in text.unicodeScalars {
            if count == maximumScalars {
                out += "… (\(text.unicodeScalars.count - count) more characters)"
                break
            }
            if scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) {
                out += "\\u{\(String(scalar.value, radix: 16))}"
            } else {
                out.unicodeScalars.append(scalar)
            }
            count += 1
        }
        return out
    }
}
