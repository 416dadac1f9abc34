"""A yes-or-no check on a message: a sentence embedding and character n-grams.

bot/inquiry.py (a person now, or how support works?), bot/ongoing.py (is the problem
happening now?) and bot/severity_boundary.py (High or Medium?) read a message the same
way: the bundled encoder and a balanced logistic regression, blended with a logistic
regression on character n-grams (`lexical_head`), which sees the wording ("can you …",
"last month …") that the embedding blurs into the topic. Each check keeps its own labels,
error costs and threshold rule; this module fits and scores. bot/frustration.py's models
blend the same two heads (a message scores its highest sentence there).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

LEXICAL_WEIGHT = 0.5
FOLDS = 5

Labelled = Sequence[tuple[str, bool]]
# The threshold from out-of-fold scores and their gold labels.
ThresholdRule = Callable[[Any, Any], float]


def lexical_head() -> Any:
    """Character n-grams (2 to 5, within words) → a balanced logistic regression: the
    wording beside the embedding (also bot/frustration.py's and bot/breadth.py's)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    return make_pipeline(
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True),
        LogisticRegression(C=4.0, class_weight="balanced", max_iter=3000),
    )


def embedding_head() -> Any:
    """The balanced logistic regression on sentence embeddings."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=4.0, class_weight="balanced", max_iter=3000)


def blended(head: Any, lexical: Any, weight: float, x: Any, texts: Sequence[str]) -> Any:
    """(1 - `weight`) × `head`'s P(yes) on the features `x`, plus `weight` × `lexical`'s on `texts`."""
    return (1 - weight) * head.predict_proba(x)[:, 1] + (weight * lexical.predict_proba(list(texts))[:, 1])


def out_of_fold(x: Any, y: Any, texts: Sequence[str], head: Callable[[], Any], weight: float, base: int = 0) -> Any:
    """The blended P(yes) of rows `base:` by 5-fold models that did not see them (`head()`
    on `x` and `lexical_head()` on `texts`; the first `base` rows are in every fold's training)."""
    import numpy as np
    from sklearn.model_selection import StratifiedKFold

    own = np.arange(base, len(texts))
    scores = np.zeros(len(own))
    for train, held in StratifiedKFold(FOLDS, shuffle=True, random_state=0).split(own, y[own]):
        keep = np.concatenate([np.arange(base), own[train]])
        rows = own[held]
        scores[held] = blended(
            head().fit(x[keep], y[keep]), lexical_head().fit([texts[i] for i in keep], y[keep]), weight,
            x[rows], [texts[i] for i in rows],
        )
    return scores


class BlendedCheck:
    """P(yes) of a message: the embedding head and the character n-gram head, blended."""

    def __init__(self, encoder: Any, head: Any, lexical: Any, threshold: float, lexical_weight: float = LEXICAL_WEIGHT):
        self._encoder = encoder
        self._head = head
        self._lexical = lexical
        self.threshold = threshold
        self.lexical_weight = lexical_weight

    @classmethod
    def fit_blend(
        cls, encoder: Any, base: Labelled, cases: Labelled, rule: ThresholdRule, lexical_weight: float = LEXICAL_WEIGHT,
    ) -> Any:
        """Train on `base` and `cases` (text, label); the threshold is `rule` over the
        5-fold out-of-fold scores of `cases` (`base` is in every fold's training)."""
        import numpy as np

        texts = [t for t, _ in [*base, *cases]]
        x = np.asarray(encoder.encode(texts))
        y = np.array([label for _, label in [*base, *cases]])
        scores = out_of_fold(x, y, texts, embedding_head, lexical_weight, base=len(base))
        threshold = float(rule(scores, y[len(base):]))
        return cls(encoder, embedding_head().fit(x, y), lexical_head().fit(texts, y), threshold, lexical_weight)

    def _blend(self, embedded: Any, texts: Sequence[str]) -> Any:
        return blended(self._head, self._lexical, self.lexical_weight, embedded, texts)

    def probability(self, message: str) -> float:
        return float(self._blend(self._encoder.encode([message]), [message])[0])
