"""HTTP routes, one module per resource. Each exposes ``router``."""
