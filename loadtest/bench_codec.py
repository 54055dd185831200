"""``python -m loadtest.bench_codec``: MessagePack libraries on the fan-out encode path.

The hub encodes each outgoing message once per tick and subprotocol (``hub/channels/
codec.py``) and decodes each seat delta Redis publishes; this compares ``msgpack`` (what the
hub uses) with ``msgspec.msgpack`` on the frames that path carries:

- a ``seats`` delta of 50 changes (a busy tick),
- a ``snapshot`` of a 20,000-seat event (seat codes as ``bin``),
- a ``price`` message of four sections.

Each figure is the median of 5 runs, the libraries interleaved within every run so that a
neighbour's load falls on both alike; a run times enough repetitions to last about 50 ms.
Both libraries must produce frames the other decodes to the same message, or the
comparison would be meaningless: that is checked first.
"""

from __future__ import annotations

import argparse
import functools
import random
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import msgpack
import msgspec

RUNS = 5
TARGET_SECONDS = 0.05

Encode = Callable[[Any], bytes]
Decode = Callable[[bytes], Any]


def frames(seed: int = 1) -> dict[str, dict[str, Any]]:
    """The typical messages of the fan-out path, shaped as the hub builds them."""
    rng = random.Random(seed)
    n_seats = 20_000
    changes = [[idx, rng.choice((0, 1, 2))] for idx in rng.sample(range(n_seats), 50)]
    seats = bytes(rng.choice((0, 0, 0, 1, 2)) for _ in range(n_seats))
    sections = {"Floor": 150.0, "Lower": 110.0, "Upper": 80.0, "Balcony": 45.0}
    return {
        "delta (50 changes)": {"t": "seats", "from": 81_950, "seq": 82_000, "changes": changes},
        "snapshot (20,000 seats)": {
            "t": "snapshot",
            "seq": 82_000,
            "seats": seats,
            "prices": sections,
            "counts": {"total": n_seats, "available": 12_000, "held": 4_000, "sold": 4_000},
        },
        "price": {
            "t": "price",
            "seq": 82_000,
            "prices": {name: round(price * 1.07, 2) for name, price in sections.items()},
            "factors": {"demand": 0.05, "time": 0.02, "velocity": 0.0, "waitlist": 0.0},
        },
    }


def libraries() -> dict[str, tuple[Encode, Decode]]:
    """Each library's encoder and decoder, called as the hub calls it (``msgpack``: as in
    ``hub/channels/codec.py`` and ``fanout.py``; ``msgspec``: one encoder and decoder per
    process, as ``codec.py`` keeps its JSON encoder)."""
    encoder = msgspec.msgpack.Encoder()
    decoder = msgspec.msgpack.Decoder()
    return {
        "msgpack": (
            lambda message: msgpack.packb(message, use_bin_type=True),
            lambda data: msgpack.unpackb(data, raw=False),
        ),
        "msgspec": (encoder.encode, decoder.decode),
    }


def check_compatible(libs: dict[str, tuple[Encode, Decode]]) -> None:
    """Every library's frames decode, with every library, to the original message."""
    for name, message in frames().items():
        for enc_name, (encode, _) in libs.items():
            data = encode(message)
            for dec_name, (_, decode) in libs.items():
                if decode(data) != message:
                    raise SystemExit(f"{name}: {enc_name} -> {dec_name} does not round-trip")


def per_call_us(call: Callable[[], object]) -> float:
    """Microseconds per call, over enough calls to last about ``TARGET_SECONDS``."""
    number = 1
    while True:
        started = time.perf_counter()
        for _ in range(number):
            call()
        elapsed = time.perf_counter() - started
        if elapsed >= TARGET_SECONDS:
            return elapsed / number * 1e6
        number *= 2 if elapsed == 0 else max(2, int(TARGET_SECONDS / elapsed * 1.2))


def measure(runs: int = RUNS) -> dict[tuple[str, str, str], list[float]]:
    """``(frame, library, "encode" | "decode") -> µs per frame``, one value per run."""
    libs = libraries()
    check_compatible(libs)
    messages = frames()
    samples: dict[tuple[str, str, str], list[float]] = {}
    for _ in range(runs):
        for name, message in messages.items():
            for lib, (encode, decode) in libs.items():
                data = encode(message)
                enc = per_call_us(functools.partial(encode, message))
                dec = per_call_us(functools.partial(decode, data))
                samples.setdefault((name, lib, "encode"), []).append(enc)
                samples.setdefault((name, lib, "decode"), []).append(dec)
    return samples


def table(samples: dict[tuple[str, str, str], list[float]]) -> str:
    """Medians (with the spread of the runs) and msgspec's time as a fraction of msgpack's."""
    lines = [f"{'frame':<25}{'op':<8}{'msgpack µs':>18}{'msgspec µs':>18}{'msgspec/msgpack':>17}"]
    names = list(dict.fromkeys(name for name, _, _ in samples))
    for name in names:
        for op in ("encode", "decode"):
            cells = []
            medians = []
            for lib in ("msgpack", "msgspec"):
                values = samples[(name, lib, op)]
                median = statistics.median(values)
                medians.append(median)
                cells.append(f"{median:8.2f} ({min(values):.2f}-{max(values):.2f})")
            ratio = medians[1] / medians[0]
            lines.append(f"{name:<25}{op:<8}{cells[0]:>18}{cells[1]:>18}{ratio:>17.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.bench_codec", description=__doc__)
    parser.add_argument("--runs", type=int, default=RUNS, help="interleaved runs (median)")
    args = parser.parse_args(argv)
    print(f"msgpack {msgpack.version}, msgspec {msgspec.__version__}; {args.runs} runs")
    print("median µs per frame (min-max over the runs)")
    print(table(measure(args.runs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
