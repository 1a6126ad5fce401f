"""Fixtures of the end-to-end tests: the stack of real programs and the traffic through it, on
the collector path and on the default (embedded endpoint) path."""

from e2e_stack import binaries, embedded, path, stack, traffic

__all__ = ["binaries", "embedded", "path", "stack", "traffic"]
