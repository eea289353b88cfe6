"""Benchmark of ``fab configure-targets`` against the SSH floor, ansible-core and pyinfra.

Not part of the test suite: ``./dev bench`` (or ``python -m benchmarks``) runs it on the
lab; ``tests/e2e/test_benchmark.py`` runs a tiny one so that it cannot rot.
"""
