"""Unit tests: no server process, no network service."""
