"""Stats: what the servers are doing, read the same way by the API, the admin, /metrics and the CLI."""
