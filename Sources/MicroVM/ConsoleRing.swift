import Synchronization

/// A bounded, thread-safe byte ring that keeps the most recent output of a guest console (or of a
/// VMM's stderr). Whatever the guest prints, the host never holds more than `capacity` bytes of it.
public final class ConsoleRing: Sendable {
    private struct Storage {
        var bytes: [UInt8]
        /// Index of the oldest byte when the ring is full; the next write position in any case.
        var next = 0
        var count = 0
        var total = 0
    }

    /// Most bytes kept; older bytes are overwritten.
    public let capacity: Int
    private let storage: Mutex<Storage>

    /// - Parameter capacity: bytes kept (at least 1).
    public init(capacity: Int) {
        let capacity = max(1, capacity)
        self.capacity = capacity
        storage = Mutex(Storage(bytes: [UInt8](repeating: 0, count: capacity)))
    }

    /// Appends bytes, dropping the oldest ones past the capacity.
    public func append(_ bytes: UnsafeRawBufferPointer) {
        guard !bytes.isEmpty else { return }
        let capacity = self.capacity
        storage.withLock { storage in
            storage.total += bytes.count
            // Only the last `capacity` bytes of a large write can survive.
            let kept = bytes.count > capacity ? UnsafeRawBufferPointer(rebasing: bytes[(bytes.count - capacity)...]) : bytes
            var offset = 0
            while offset < kept.count {
                let chunk = min(kept.count - offset, capacity - storage.next)
                storage.bytes.withUnsafeMutableBytes { ring in
                    ring.baseAddress!.advanced(by: storage.next)
                        .copyMemory(from: kept.baseAddress!.advanced(by: offset), byteCount: chunk)
                }
                storage.next = (storage.next + chunk) % capacity
                offset += chunk
            }
            storage.count = min(capacity, storage.count + kept.count)
        }
    }

    /// Appends bytes, dropping the oldest ones past the capacity.
    public func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { append($0) }
    }

    /// Appends the UTF-8 bytes of a string (host-side annotations, tests).
    public func append(_ text: String) {
        append(Array(text.utf8))
    }

    /// Every byte ever appended, including those already dropped.
    public var totalBytes: Int { storage.withLock { $0.total } }

    /// The bytes currently kept, oldest first.
    public func snapshot() -> [UInt8] {
        storage.withLock { storage in
            if storage.count < capacity { return Array(storage.bytes[0..<storage.count]) }
            return Array(storage.bytes[storage.next...] + storage.bytes[..<storage.next])
        }
    }

    /// The end of the kept output as text (invalid UTF-8 replaced), at most `maxBytes` bytes,
    /// starting at a line boundary when one is near so the first line is not cut in the middle.
    public func tail(maxBytes: Int = 4096) -> String {
        var bytes = snapshot()
        if bytes.count > maxBytes {
            bytes.removeFirst(bytes.count - maxBytes)
            if let newline = bytes.prefix(200).firstIndex(of: UInt8(ascii: "\n")) {
                bytes.removeFirst(newline + 1)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
