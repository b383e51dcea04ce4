"""The example chat: rooms on presence channels, messages saved then broadcast after commit."""
