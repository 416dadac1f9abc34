"""axe-core in the browser tests: the engine bundled in tests/vendor/axe-core (MPL-2.0,
unmodified, licence header kept), injected into the page under test by Playwright.

Nothing comes from a CDN. The page keeps its Content-Security-Policy: Playwright
evaluates the script through the browser's debugging protocol, which the page's CSP
does not govern, so the pages are tested exactly as they are served.
"""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache
from pathlib import Path

AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
# The published Subresource Integrity hash of axe-core 4.14.1's axe.min.js.
AXE_SHA256 = "KTSJmUUM3yhJqOcLeRL8LahahJ2jnA0NU5T1HUqe2Vw="
BLOCKING = ("serious", "critical")


@lru_cache(maxsize=1)
def axe_source() -> str:
    data = AXE.read_bytes()
    digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
    if digest != AXE_SHA256:
        raise AssertionError(f"{AXE} is not axe-core 4.14.1 as published (sha256 {digest})")
    text = data.decode("utf-8")
    assert text.startswith("/*! axe v4.14.1"), "the licence header of axe.min.js is missing"
    return text


def axe_violations(page, impacts: tuple[str, ...] = BLOCKING) -> list[dict]:
    """Run axe on the whole page (open shadow roots included); the violations of those impacts.

    Each is {"id", "impact", "help", "nodes": [selector, ...]}, short enough to read in an
    assertion message. While it measures, axe sets inline styles, which the pages' CSP
    refuses (and reports on the console): those reports are axe's, not the page's, so they
    are dropped from the page's `problems` (see tests/test_widget_browser.py `open_page`).
    """
    problems = getattr(page, "problems", None)
    before = len(problems) if problems is not None else 0
    if not page.evaluate("() => typeof window.axe === 'object'"):
        # A function body compiled by the debugging protocol: not subject to the page's CSP.
        page.evaluate("() => {\n" + axe_source() + "\n}")
    results = page.evaluate(
        """async () => {
            const r = await window.axe.run(document, {resultTypes: ["violations"]});
            return r.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map(n => n.target.join(" ")).slice(0, 5),
            }));
        }"""
    )
    if problems is not None:
        problems[before:] = [p for p in problems[before:] if "inline style" not in p]
    return [v for v in results if v["impact"] in impacts]
