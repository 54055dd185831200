"""The codec bench compares like with like: frames both libraries round-trip, every figure."""

from __future__ import annotations

import pytest

from loadtest import bench_codec


def test_both_libraries_round_trip_every_frame_of_the_other() -> None:
    bench_codec.check_compatible(bench_codec.libraries())


def test_a_run_measures_every_frame_library_and_operation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bench_codec, "TARGET_SECONDS", 0.001)
    samples = bench_codec.measure(runs=2)
    frames = bench_codec.frames()
    expected = {
        (f, lib, op)
        for f in frames
        for lib in ("msgpack", "msgspec")
        for op in ("encode", "decode")
    }
    assert set(samples) == expected
    assert all(len(values) == 2 and min(values) > 0 for values in samples.values())
    table = bench_codec.table(samples).splitlines()
    assert len(table) == 1 + 2 * len(frames)


def test_the_snapshot_frame_carries_seat_codes_as_bytes() -> None:
    snapshot = bench_codec.frames()["snapshot (20,000 seats)"]
    assert isinstance(snapshot["seats"], bytes) and len(snapshot["seats"]) == 20_000
    assert set(snapshot["seats"]) <= {0, 1, 2}
    assert len(bench_codec.frames()["delta (50 changes)"]["changes"]) == 50
