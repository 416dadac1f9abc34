"""Figures measured by tests (precision, recall…), printed at the end of the run by
conftest.py. A module of its own: pytest imports conftest.py under a second name, so a
list kept there would exist twice."""

MEASUREMENTS: list[str] = []
