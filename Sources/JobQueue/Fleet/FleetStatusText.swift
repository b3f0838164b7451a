import FoundationEssentials

/// `codebench-worker status` without `--json`: the fleet as a person reads it in a terminal.
public enum FleetStatusText {
    public static func render(_ status: FleetStatus) -> String {
        let now = status.generatedAtMilliseconds
        var lines = ["QUEUES"]
        let width = status.queues.map { safe($0.name).count }.max() ?? 0
        for queue in status.queues {
            lines.append("  " + pad(queue.role.rawValue, 11) + pad(safe(queue.name), width + 2) + String(queue.depth))
        }
        lines.append("")
        lines.append("WORKERS (\(status.workers.count))")
        if status.workers.isEmpty { lines.append("  none registered") }
        for worker in status.workers {
            var head = "  \(safe(worker.id))  "
            if let age = worker.heartbeatAgeMilliseconds {
                head += "alive, heartbeat \(duration(age)) ago"
            } else {
                head += "NO HEARTBEAT (presumed dead; the reaper requeues its jobs)"
            }
            if !worker.registered { head += ", unregistered" }
            lines.append(head)
            if let info = worker.info {
                lines.append(
                    "      host \(safe(info.host)), \(safe(info.vmm)), pid \(info.pid), version \(safe(info.version)), "
                        + "concurrency \(info.concurrency), up \(duration(max(0, now - info.startedAtMilliseconds)))")
            }
            if worker.jobs.isEmpty {
                lines.append("      idle")
            }
            for job in worker.jobs {
                let age = job.claimedAtMilliseconds.map { duration(max(0, now - $0)) } ?? "age unknown"
                lines.append("      running \(job.id.map(safe) ?? "(no readable id)") for \(age)")
            }
            if worker.processingDepth > worker.jobs.count {
                lines.append("      … and \(worker.processingDepth - worker.jobs.count) more")
            }
        }
        lines.append("")
        let deadDepth = status.queues.first { $0.role == .dead }?.depth ?? status.deadLetters.count
        lines.append("DEAD LETTERS (newest \(status.deadLetters.count) of \(deadDepth))")
        if status.deadLetters.isEmpty { lines.append("  none") }
        for letter in status.deadLetters {
            var line = "  \(letter.id.map(safe) ?? "(no readable id)")  \(letter.reason.map(safe) ?? "reason unknown")"
            if let at = letter.deadAtMilliseconds {
                line += "  \(Date(timeIntervalSince1970: Double(at) / 1000).ISO8601Format()) (\(duration(max(0, now - at))) ago)"
            }
            lines.append(line)
        }
        return lines.joined(separator: "\n")
    }

    /// Job ids and reasons come from hostile payloads: control characters (a terminal's escape sequences) are shown
    /// as `\u{…}` instead of being written to the operator's terminal.
    public static func safe(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            if scalar.value < 0x20 || (0x7f...0x9f).contains(scalar.value) {
                out += "\\u{\(String(scalar.value, radix: 16))}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// `850 ms`, `12.3 s`, `4 min 05 s`, `2 h 03 min`.
    static func duration(_ milliseconds: Int) -> String {
        switch milliseconds {
        case ..<1000: return "\(milliseconds) ms"
        case ..<60_000: return "\(milliseconds / 1000).\(milliseconds % 1000 / 100) s"
        case ..<3_600_000: return "\(milliseconds / 60_000) min \(two(milliseconds / 1000 % 60)) s"
        default: return "\(milliseconds / 3_600_000) h \(two(milliseconds / 60_000 % 60)) min"
        }
    }

    private static func two(_ value: Int) -> String { value < 10 ? "0\(value)" : String(value) }

    private static func pad(_ text: String, _ width: Int) -> String {
        text + String(repeating: " ", count: max(1, width - text.count))
    }
}
