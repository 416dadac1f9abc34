"""The operating point of a small text model: the threshold of least error cost on
out-of-fold probabilities, and the logistic head those models share (contact facets,
time questions, vendor senses)."""

from __future__ import annotations

from typing import Any, Callable

# Thresholds tried, unless a model names its own.
GRID = tuple(round(0.2 + 0.05 * i, 2) for i in range(16))  # 0.2 … 0.95


def logistic_head(c: float = 1.0) -> Any:
    """A logistic regression; `c` is the inverse of its regularisation (sklearn's C)."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=5000)


def least_cost_threshold(probabilities: Any, cost: Callable[[Any], float], grid: tuple[float, ...] = GRID) -> float:
    """The first threshold of `grid` whose decisions (`probabilities >= t`, an array of
    the same shape) cost least by `cost`; 0.5 for an empty grid."""
    import numpy as np

    probabilities = np.asarray(probabilities)
    best = (float("inf"), 0.5)
    for t in grid:
        c = cost(probabilities >= t)
        if c < best[0]:
            best = (c, float(t))
    return best[1]


def fit_binary(
    x: Any, y: Any, cost: Callable[[Any], float], grid: tuple[float, ...] = GRID, c: float = 1.0
) -> tuple[Any, float]:
    """A logistic head (inverse regularisation `c`) trained on (`x`, `y`) and its
    threshold, chosen by `cost` (a function of the decisions, given in `y`'s order) on
    5-fold stratified out-of-fold probabilities."""
    import numpy as np
    from sklearn.model_selection import StratifiedKFold

    oof = np.zeros(len(y))
    for train, held in StratifiedKFold(5, shuffle=True, random_state=0).split(x, y):
        oof[held] = logistic_head(c).fit(x[train], y[train]).predict_proba(x[held])[:, 1]
    return logistic_head(c).fit(x, y), least_cost_threshold(oof, cost, grid)
