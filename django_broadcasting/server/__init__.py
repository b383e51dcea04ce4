"""The real-time server: per-process hub, consumers, protocols, presence and transports."""
