"""Labelled cases in JSON Lines, as the small text models (people first, language, route
check) read them: one object per line, blank lines skipped, errors naming the line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, TypeVar

T = TypeVar("T")


class CasesError(ValueError):
    """A labelled cases file is missing or malformed."""


class InvalidCase(ValueError):
    """Raised by a case parser for a well-formed line with a value it does not accept."""


def read_cases(path: str | Path, parse: Callable[[Any], T]) -> list[T]:
    """`parse` applied to each line's JSON. A missing key or a wrong type is a "bad case";
    an `InvalidCase` message is reported as it is, after the file and line."""
    path = Path(path)
    if not path.is_file():
        raise CasesError(f"{path}: cases file not found")
    cases = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            cases.append(parse(json.loads(line)))
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise CasesError(f"{path}:{number}: bad case ({err})") from None
        except InvalidCase as err:
            raise CasesError(f"{path}:{number}: {err}") from None
    return cases
