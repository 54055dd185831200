"""The hub's CLI with a probe of its heap, for benchmarks that ask whether memory freed
inside the process came back (``tests.bench.ws_faults --heap-probe``).

``HEAP_PROBE_FILE=F PYTHONMALLOC=malloc python -m tests.bench.heap_probe serve ...`` runs
``python -m hub.cli serve ...``; each SIGUSR2 appends one JSON line to F:
``{"objects", "in_use", "free"}`` — the objects the collector tracks (frozen ones too)
after a collection, and glibc's ``mallinfo2`` bytes allocated and free in its heap. With
``PYTHONMALLOC=malloc`` every Python object comes from glibc, so ``in_use`` is what the
process really holds, and ``free`` what its allocator keeps for reuse: the part of the RSS
that is not in use.
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import runpy
import signal
import sys
from typing import Any


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd",
            "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost",
        )
    ]  # fmt: skip


def heap() -> dict[str, int]:
    """Tracked objects and glibc's heap, now."""
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = _MallInfo2
    gc.collect()  # frozen objects are left alone, and counted below
    info = libc.mallinfo2()
    return {
        "objects": len(gc.get_objects()) + gc.get_freeze_count(),
        "in_use": info.uordblks + info.hblkhd,  # small chunks + mmapped blocks
        "free": info.fordblks,
    }


def main() -> None:
    path = os.environ["HEAP_PROBE_FILE"]

    def probe(*_: Any) -> None:
        with open(path, "a") as f:
            f.write(json.dumps(heap()) + "\n")

    signal.signal(signal.SIGUSR2, probe)
    sys.argv = ["hub.cli", *sys.argv[1:]]
    runpy.run_module("hub.cli", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
