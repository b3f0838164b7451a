import MicroVM
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The guest kernel's CONFIG_HZ, when the image build left the kernel's config beside the image.
///
/// With it the driver passes `lapic_timer_period=` and the guest skips calibrating its local APIC
/// timer (a 100 ms busy wait, ~0.1 s of every boot). QEMU's emulated APIC bus runs at 1 GHz, so
/// the period is 10^9 / HZ bus ticks per jiffy. A wrong HZ would make every guest timer fire at the
/// wrong rate, so without a config that says it, nothing is passed and the guest calibrates.
enum KernelHZ {
    private static let cache = Mutex<[String: Int?]>([:])

    /// `image/<sha>/manifest` names the kernel (`kernel=<sha>`), whose config is in `kernel/<sha>/config`.
    static func of(_ image: GuestImage) -> Int? {
        // Keyed by the file, not the path: image/current is re-pointed when the image is rebuilt.
        var info = stat()
        guard stat(image.kernelPath, &info) == 0 else { return nil }
        let key = "\(image.kernelPath) \(info.st_dev) \(info.st_ino) \(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)"
        if let cached = cache.withLock({ $0[key] }) { return cached }
        let hz = lookup(image)
        cache.withLock { $0[key] = hz }
        return hz
    }

    /// The `lapic_timer_period=` value for a kernel with this HZ.
    static func lapicTimerPeriod(hz: Int) -> Int { 1_000_000_000 / hz }

    private static func lookup(_ image: GuestImage) -> Int? {
        guard let slash = image.kernelPath.lastIndex(of: "/") else { return nil }
        let imageDirectory = String(image.kernelPath[..<slash])
        guard let manifest = readText(imageDirectory + "/manifest"),
            let kernel = value(of: "kernel", in: manifest), !kernel.isEmpty, !kernel.contains("/")
        else { return nil }
        guard let config = readText(imageDirectory + "/../../kernel/\(kernel)/config") else { return nil }
        return value(of: "CONFIG_HZ", in: config).flatMap(Int.init).flatMap { (100...1000).contains($0) ? $0 : nil }
    }

    static func value(of key: String, in text: String) -> String? {
        for line in text.split(separator: "\n") where line.hasPrefix(key + "=") {
            return String(line.dropFirst(key.count + 1))
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
