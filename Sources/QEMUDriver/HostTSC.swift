import MicroVM

#if canImport(Glibc)
import Glibc
#endif

/// The host's TSC frequency in kHz, for the guest's `tsc_early_khz=`.
enum HostTSC {
    /// sysfs first (exact, where the kernel exposes it), else "cpu MHz" of /proc/cpuinfo (on
    /// constant-TSC hosts that is the TSC rate the kernel detected at boot), else nil.
    static let kHz: Int? = {
        if let text = readText("/sys/devices/system/cpu/cpu0/tsc_freq_khz"),
            let value = Int(text.trimming(" \n")), value > 0
        {
            return value
        }
        return cpuinfoKHz(readText("/proc/cpuinfo") ?? "")
    }()

    /// Parses the first `cpu MHz : 2596.138` line into kHz.
    static func cpuinfoKHz(_ cpuinfo: String) -> Int? {
        for line in cpuinfo.split(separator: "\n") where line.hasPrefix("cpu MHz") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let number = line[line.index(after: colon)...].trimming(" \t")
            guard let mhz = Double(number), mhz > 0 else { continue }
            return Int((mhz * 1000).rounded())
        }
        return nil
    }

    private static func readText(_ path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var text = ""
        var buffer = [CChar](repeating: 0, count: 4096)
        while text.utf8.count < 1 << 20, fgets(&buffer, Int32(buffer.count), file) != nil {
            text += buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        }
        return text
    }
}

extension Substring {
    func trimming(_ set: String) -> String {
        var slice = self[...]
        while let first = slice.first, set.contains(first) { slice = slice.dropFirst() }
        while let last = slice.last, set.contains(last) { slice = slice.dropLast() }
        return String(slice)
    }
}

extension String {
    func trimming(_ set: String) -> String { self[...].trimming(set) }
}
