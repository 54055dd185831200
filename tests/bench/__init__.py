"""Benchmarks that drive the hub's services in process (a bulk booking end to end).

``loadtest/`` holds what drives a hub from outside and may import only the faces of the hub
that DESIGN's layer table names; a benchmark that needs the app or the services themselves
lives here, beside the tests, which may import everything. Run them as modules, e.g.
``python -m tests.bench.bulk``; pytest collects nothing from here (no ``test_*`` files).
"""
