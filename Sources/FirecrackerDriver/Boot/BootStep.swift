/// One named step of the boot sequence. The sequence is a plain ordered list (as in
/// firecracker-go-sdk's handler lists) so it can be read, logged and tested as data.
struct BootStep: Sendable {
    let name: String
    let run: @Sendable (FirecrackerVM) async throws -> Void

    init(_ name: String, _ run: @escaping @Sendable (FirecrackerVM) async throws -> Void) {
        self.name = name
        self.run = run
    }
}
