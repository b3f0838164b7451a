import Logging

/// One named step of bringing a VM up (validate, prepare runtime dir, spawn VMM, ..., await hello).
///
/// A driver lists its steps as data (``BootableVMM/steps(for:)``), so they can be read, logged and
/// tested by name; ``VMBoot`` runs them in order on one of the driver's VMs with ``BootSteps/run(_:on:)``.
public struct BootStep<VM: BootingVM>: Sendable {
    /// How logs, errors and `bootStepNames` call it (`spawn`, `await hello`, ...).
    public let name: String
    let body: @Sendable (VM) async throws -> Void

    public init(_ name: String, _ body: @escaping @Sendable (VM) async throws -> Void) {
        self.name = name
        self.body = body
    }
}

/// A VM while its steps run: it records what they acquired (so teardown undoes exactly that) and
/// logs with the metadata they added. One task uses it at a time, so it need not be `Sendable`.
public protocol BootingVM: AnyObject {
    var logger: Logger { get }
}

/// The step that failed and what it threw, before the driver turns it into its ``VMError``.
public struct BootStepFailure: Error {
    /// The name of the step that threw.
    public var step: String
    /// What it threw, unchanged.
    public var error: any Error
}
