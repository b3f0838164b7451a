#if canImport(Glibc)
import Glibc
#endif

/// Runs `command` with /bin/sh and returns its stdout without the trailing newline.
public func runShell(_ command: String) throws -> String {
    guard let pipe = popen(command, "r") else { throw ShellError(description: "popen failed for: \(command)") }
    var output: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = fread(&buffer, 1, buffer.count, pipe)
        if count <= 0 { break }
        output += buffer[0..<count]
    }
    pclose(pipe)
    var text = String(decoding: output, as: UTF8.self)
    while text.hasSuffix("\n") { text.removeLast() }
    return text
}

/// `popen` could not start the shell.
public struct ShellError: Error, CustomStringConvertible {
    public var description: String
}
