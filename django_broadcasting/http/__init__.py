"""HTTP endpoints: the signed trigger API, stats, metrics and channel authorization."""
