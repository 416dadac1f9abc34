"""The tree shows the design (issue 17): the HTTP edge in bot/web/, a domain that never
imports it, Rasa's plug-in package free of bot/, and no two modules of one name."""

from __future__ import annotations

import ast
import collections
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "actions", "kb_index", "rasa_plugins", "rasa_sdk_plugins")


def imported(path: pathlib.Path) -> set[str]:
    """Every module a file imports (absolute names)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def modules(package: str) -> list[pathlib.Path]:
    return [p for p in (ROOT / package).rglob("*.py") if "migrations" not in p.parts]


def test_the_domain_never_imports_the_http_edge():
    below = [p for p in modules("bot") if "web" not in p.relative_to(ROOT / "bot").parts and p.name != "__main__.py"]
    assert below, "no domain modules found"
    offenders = [str(p.relative_to(ROOT)) for p in below if any(n == "bot.web" or n.startswith("bot.web.") for n in imported(p))]
    assert offenders == []


def test_rasas_plugins_import_nothing_from_bot():
    """rasa_plugins runs inside Rasa (Python 3.10), where bot/'s 3.11 dependencies are absent."""
    offenders = [str(p.relative_to(ROOT)) for p in modules("rasa_plugins") if any(n.split(".")[0] == "bot" for n in imported(p))]
    assert offenders == []


def test_no_two_modules_share_a_name():
    seen = collections.defaultdict(list)
    for package in PACKAGES:
        for path in modules(package):
            if path.name not in ("__init__.py", "__main__.py"):
                seen[path.stem].append(str(path.relative_to(ROOT)))
    assert {name: paths for name, paths in seen.items() if len(paths) > 1} == {}
