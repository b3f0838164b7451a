import Testing

/// The suites that spawn processes or hold flocks, run one at a time. A flock belongs to an open file
/// description, and posix_spawn's child holds a copy of every fd from its clone() until its exec closes
/// the close-on-exec ones: a spawn running beside a slot test can keep a just-released slot locked for
/// that moment. (The proxy itself never spawns, so this only concerns the test process.)
@Suite(.serialized) struct SpawnSensitiveTests {}
