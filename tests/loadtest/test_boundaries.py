"""The load test reaches the hub only through the faces DESIGN §2 names, never private names.

Every import counts, at module level or late inside a function.
"""

from __future__ import annotations

import ast
from pathlib import Path

LOADTEST = Path(__file__).resolve().parents[2] / "loadtest"
ALLOWED = {
    "hub.settings",
    "hub.store",
    "hub.inventory",
    "hub.db",
    "hub.auth",
    "hub.channels.mirror",
    "hub.channels.subscriber",
}


def hub_imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """``(line, module, names)`` of every import of a ``hub`` module in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "hub" or node.module.startswith("hub."):
                found.append((node.lineno, node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "hub" or alias.name.startswith("hub."):
                    found.append((node.lineno, alias.name, []))
    return found


def allowed(module: str) -> bool:
    return any(module == face or module.startswith(face + ".") for face in ALLOWED)


def test_loadtest_imports_only_the_named_faces_of_the_hub() -> None:
    wrong = []
    for path in sorted(LOADTEST.rglob("*.py")):
        for line, module, names in hub_imports(path):
            where = f"{path.relative_to(LOADTEST.parent)}:{line}"
            if not allowed(module):
                wrong.append(f"{where} imports {module}")
            wrong += [f"{where} imports private {module}.{n}" for n in names if n.startswith("_")]
            if module == "hub":
                # ``from hub import x`` reaches a module x of the hub: it must be a face too.
                wrong += [f"{where} imports hub.{n}" for n in names if not allowed(f"hub.{n}")]
    assert wrong == []


def test_the_check_sees_late_and_private_imports(tmp_path: Path) -> None:
    module = tmp_path / "late.py"
    module.write_text(
        "def start():\n"
        "    from hub.embedded import EmbeddedServers\n"
        "    from hub.store import _private\n"
        "    import hub.cli\n"
    )
    found = hub_imports(module)
    assert [(m, n) for _, m, n in found] == [
        ("hub.embedded", ["EmbeddedServers"]),
        ("hub.store", ["_private"]),
        ("hub.cli", []),
    ]
    assert not allowed("hub.embedded") and not allowed("hub.cli") and allowed("hub.db.migrate")
