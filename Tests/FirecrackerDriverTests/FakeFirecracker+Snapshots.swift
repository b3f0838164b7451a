import AgentProtocol
import Foundation
import NIOCore
import Synchronization

/// Firecracker's snapshot API as the v1.16.1 spec describes it, in the fake: bodies are checked
/// against the project's contract of that API (`FirecrackerContract`; Firecracker rejects what does
/// not deserialise), a snapshot is only taken of a paused VM, and a load reads back what a create wrote.
extension FakeFirecracker {
    /// From now on the fake agent answers `resume` with an error, as an agent too old for it would.
    func rejectResumes() {
        state.withLock { $0.rejectResumes = true }
    }

    /// The first line of every state file the fake writes; anything else is a corrupt snapshot.
    static let stateMagic = "FAKE-FIRECRACKER-SNAPSHOT v1.16.1"

    func handleSnapshotRequest(_ request: Request, on channel: any Channel) {
        let violations = FirecrackerContract.violations(method: request.method, path: request.uri, body: request.body)
        guard violations.isEmpty, let object = request.object else {
            send(.fault(status: 400, "An error occurred when deserializing the json body of a request: \(violations.joined(separator: "; "))"), on: channel)
            return
        }
        switch request.uri {
        case "/vm":
            state.withLock { $0.paused = object["state"] as? String == "Paused" }
            send(.noContent, on: channel)
        case "/snapshot/create":
            send(create(object), on: channel)
        default:
            load(object, on: channel)
        }
    }

    private func create(_ object: [String: Any]) -> Reply {
        let (started, paused, vsockPath) = state.withLock { ($0.started, $0.paused, $0.vsockPath) }
        guard started, paused else {
            return .fault(status: 400, "Create snapshot error: the microVM is not paused")
        }
        let statePath = hostPath(object["snapshot_path"] as? String ?? "")
        let memoryPath = hostPath(object["mem_file_path"] as? String ?? "")
        do {
            try "\(Self.stateMagic)\nvsock \(vsockPath ?? "-")\n".write(toFile: statePath, atomically: false, encoding: .utf8)
            try "fake guest memory\n".write(toFile: memoryPath, atomically: false, encoding: .utf8)
        } catch {
            return .fault(status: 400, "Create snapshot error: \(error)")
        }
        return .noContent
    }

    private func load(_ object: [String: Any], on channel: any Channel) {
        let statePath = hostPath(object["snapshot_path"] as? String ?? "")
        let memory = object["mem_backend"] as? [String: Any]
        let memoryPath = hostPath(memory?["backend_path"] as? String ?? "")
        guard FileManager.default.fileExists(atPath: memoryPath) else {
            send(.fault(status: 400, "Load snapshot error: Cannot open the memory file: No such file or directory (os error 2)"), on: channel)
            return
        }
        guard let text = try? String(contentsOfFile: statePath, encoding: .utf8) else {
            send(.fault(status: 400, "Load snapshot error: Cannot open snapshot file: No such file or directory (os error 2)"), on: channel)
            return
        }
        let lines = text.split(separator: "\n").map(String.init)
        guard lines.first == Self.stateMagic, let saved = lines.dropFirst().first?.split(separator: " ").last else {
            send(.fault(status: 400, "Load snapshot error: Failed to restore from snapshot: Failed to get snapshot state from file: Invalid data"), on: channel)
            return
        }
        let override = (object["vsock_override"] as? [String: Any])?["uds_path"] as? String
        let vsockPath = override ?? String(saved)
        let resume = object["resume_vm"] as? Bool == true
        startVsock(at: hostPath(vsockPath)).whenComplete { result in
            switch result {
            case .success:
                self.state.withLock {
                    $0.vsockPath = vsockPath
                    $0.started = resume
                    $0.paused = !resume
                }
                self.send(.noContent, on: channel)
            case .failure(let error):
                self.send(.fault(status: 400, "Load snapshot error: Failed to restore from snapshot: vsock: \(error)"), on: channel)
            }
        }
    }

    /// What the real agent does with `resume` on the host (it checks the message, never the host's
    /// clock or entropy pool): a hello carrying the nonce, or an error.
    func resumeReply(to resume: AgentResume) -> AgentMessage {
        let reject = state.withLock {
            $0.resumes.append(resume)
            return $0.rejectResumes
        }
        guard !reject, (AgentResume.minimumEntropyBytes...AgentResume.maximumEntropyBytes).contains(resume.entropy.count),
            resume.unixTimeNanoseconds > 0
        else {
            return .error(AgentErrorReply(code: .invalidRequest, message: "resume: bad entropy or time"))
        }
        return .hello(AgentHello(agentVersion: "fake-agent", kernel: "Linux fake", resumeNonce: resume.nonce))
    }
}
