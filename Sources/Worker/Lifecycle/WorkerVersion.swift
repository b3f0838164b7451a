/// The worker's version, as `status` and the dashboard show it for each worker (`<ns>:worker:<id>:info`).
/// Bump it with a release, so an operator can tell which workers of a fleet run which build.
public enum WorkerVersion {
    public static let current = "0.1.0"
}
