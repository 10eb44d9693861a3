"""The loyalty domain: message, program and state models and the pure rules (no I/O)."""
