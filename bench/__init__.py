"""Benchmarks, load tests and server launchers: harnesses around the product, not part of it."""
