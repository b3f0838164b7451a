import NIOCore

/// A value that can be a command argument: written as one RESP bulk string.
public protocol RESPBulkStringEncodable: Sendable {
    /// Appends `$<length>\r\n<bytes>\r\n`.
    func writeRESPBulkString(into buffer: inout ByteBuffer)
}

extension ByteBuffer {
    /// Appends `$<length>\r\n<bytes>\r\n` for raw bytes.
    @inlinable
    public mutating func writeRESPBulkString(bytes: some Collection<UInt8>) {
        writeRESPLengthLine(UInt8(ascii: "$"), bytes.count)
        writeBytes(bytes)
        writeRESPCRLF()
    }

    /// Appends `<type><n>\r\n` without going through `String`.
    @inlinable
    public mutating func writeRESPLengthLine(_ type: UInt8, _ n: Int) {
        // 1 type byte + up to 20 digits/sign + CRLF.
        reserveCapacity(minimumWritableBytes: 23)
        writeInteger(type)
        writeRESPDecimal(n)
        writeRESPCRLF()
    }

    @inlinable
    mutating func writeRESPCRLF() {
        writeInteger(UInt16(0x0D0A)) // "\r\n", big-endian by default
    }

    /// Appends `n` in base 10.
    @inlinable
    public mutating func writeRESPDecimal(_ n: Int) {
        if n >= 0 && n < 10 {
            writeInteger(UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: n))
            return
        }
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0) // 24 bytes of scratch
        withUnsafeMutableBytes(of: &digits) { scratch in
            var value = n.magnitude
            var i = scratch.count
            repeat {
                i -= 1
                scratch[i] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: value % 10)
                value /= 10
            } while value > 0
            if n < 0 {
                i -= 1
                scratch[i] = UInt8(ascii: "-")
            }
            _ = writeBytes(UnsafeRawBufferPointer(rebasing: scratch[i...]))
        }
    }

    /// Appends a whole command, `*<n>\r\n` followed by one bulk string per part.
    @inlinable
    public mutating func writeRESPCommand(_ parts: [any RESPBulkStringEncodable]) {
        writeRESPLengthLine(UInt8(ascii: "*"), parts.count)
        for part in parts { part.writeRESPBulkString(into: &self) }
    }
}

extension String: RESPBulkStringEncodable {
    @inlinable
    public func writeRESPBulkString(into buffer: inout ByteBuffer) {
        buffer.writeRESPLengthLine(UInt8(ascii: "$"), utf8.count)
        buffer.writeString(self)
        buffer.writeRESPCRLF()
    }
}

extension Substring: RESPBulkStringEncodable {
    @inlinable
    public func writeRESPBulkString(into buffer: inout ByteBuffer) {
        buffer.writeRESPLengthLine(UInt8(ascii: "$"), utf8.count)
        buffer.writeSubstring(self)
        buffer.writeRESPCRLF()
    }
}

extension ByteBuffer: RESPBulkStringEncodable {
    @inlinable
    public func writeRESPBulkString(into buffer: inout ByteBuffer) {
        buffer.writeRESPLengthLine(UInt8(ascii: "$"), readableBytes)
        buffer.writeImmutableBuffer(self)
        buffer.writeRESPCRLF()
    }
}

extension Array: RESPBulkStringEncodable where Element == UInt8 {
    @inlinable
    public func writeRESPBulkString(into buffer: inout ByteBuffer) {
        buffer.writeRESPBulkString(bytes: self)
    }
}

extension Int: RESPBulkStringEncodable {
    @inlinable
    public func writeRESPBulkString(into buffer: inout ByteBuffer) {
        var width = self < 0 ? 2 : 1
        var rest = magnitude / 10
        while rest > 0 {
            width += 1
            rest /= 10
        }
        buffer.writeRESPLengthLine(UInt8(ascii: "$"), width)
        buffer.writeRESPDecimal(self)
        buffer.writeRESPCRLF()
    }
}

extension Int64: RESPBulkStringEncodable {
    @inlinable
    public func writeRESPBulkString(into buffer: inout ByteBuffer) {
        Int(self).writeRESPBulkString(into: &buffer)
    }
}

extension Double: RESPBulkStringEncodable {
    /// Redis parses `inf`, `-inf` and decimal/exponent notation.
    @inlinable
    public func writeRESPBulkString(into buffer: inout ByteBuffer) {
        let text = self == .infinity ? "inf" : self == -.infinity ? "-inf" : String(self)
        text.writeRESPBulkString(into: &buffer)
    }
}
