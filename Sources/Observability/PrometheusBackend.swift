import Metrics
import Prometheus

/// swift-metrics backed by a Prometheus registry, the one ``StatusServer`` exposes.
public enum PrometheusBackend {
    /// A factory writing into `registry`; timers listed in `timerBuckets` get those histogram buckets.
    /// Tests pass it to the code under test instead of bootstrapping the process-wide system.
    public static func factory(
        registry: PrometheusCollectorRegistry, timerBuckets: [String: [Duration]] = [:]
    ) -> PrometheusMetricsFactory {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets = timerBuckets
        return factory
    }

    /// Makes a registry the process-wide metrics backend and returns it. Once per process:
    /// swift-metrics traps on a second bootstrap.
    public static func bootstrap(timerBuckets: [String: [Duration]] = [:]) -> PrometheusCollectorRegistry {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(factory(registry: registry, timerBuckets: timerBuckets))
        return registry
    }
}
