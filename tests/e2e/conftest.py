"""Fixtures of the end-to-end tests: the stack of real programs and the traffic through it."""

from e2e_stack import binaries, stack, traffic

__all__ = ["binaries", "stack", "traffic"]
