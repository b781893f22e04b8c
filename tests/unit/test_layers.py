"""The import rules of DESIGN.md: dependencies point down only."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "vidicon"

# package -> packages it must never import
FORBIDDEN = {
    "base": {"core", "db", "storage", "media", "detect", "services", "api", "app", "cli", "events"},
    "core": {"db", "storage", "media", "detect", "services", "api", "app", "cli", "events"},
    "db": {"storage", "media", "detect", "services", "api", "app", "cli"},
    "storage": {"services", "api", "app", "cli"},
    "media": {"services", "api", "app", "cli"},
    "detect": {"services", "api", "app", "cli"},
    "notify": {"services", "api", "app", "cli", "db", "storage", "media"},
    "host": {"db", "storage", "media", "detect", "services", "api", "app", "cli"},
    "services": {"api", "cli"},
    "api/dialects": {"db", "storage", "media"},
}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "vidicon" and len(parts) > 1:
                found.add(parts[1])
    return found


def test_layers_only_depend_downwards() -> None:
    violations = []
    for layer, forbidden in FORBIDDEN.items():
        root = SRC / layer
        if not root.exists():
            continue
        for path in root.rglob("*.py"):
            bad = imports_of(path) & forbidden
            if bad:
                violations.append(f"{path.relative_to(SRC)} imports {sorted(bad)}")
    assert not violations, "\n".join(violations)


def test_the_rule_checker_sees_imports() -> None:
    assert "db" in imports_of(SRC / "storage" / "segments.py")
