"""Redis: the clients the gateway uses (one server, a Redis Cluster or a Sentinel-managed primary),
the hash-tag rule every key follows, the embedded server it can start, and local cluster and
sentinel set-ups for tests and benchmarks."""
