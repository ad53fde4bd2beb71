"""Use cases: read state, apply a pure rule, write once (conditionally)."""
