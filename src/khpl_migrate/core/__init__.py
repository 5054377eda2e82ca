"""The pure core: no I/O, property-tested. Everything else builds on it."""
