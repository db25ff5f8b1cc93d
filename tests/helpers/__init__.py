"""Shared pieces of the tests. Test modules import from here, never from each other."""
