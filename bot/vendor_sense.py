"""Is a name that is also an everyday word used here as another company's product?

The answerer declines a question about another company's product (the object check in
bot/faq.py) and gives the third-party answer for one the policy lists. Found by name
alone, "my brother does our bookkeeping, how do I give him access" was declined as a
question about Brother printers, "how do I square up the till" got "Square is a
third-party product", and "since 8am none of our teams can log in" was declined as a
question about Microsoft Teams, so the outage got no urgent ticket. For the names in
`data/vendor_mentions/senses.yml` (Brother, Square, Teams, Toast, Wave …) the mention
counts as the product only when this check reads it so.

The decision is by meaning. The words around the mention (`WINDOW` either side), and
the whole message, are compared (the answerer's encoder, cosine) with what the product
is and with what the everyday word means (senses.yml, written from the products and
the words, not from the cases); the product's lead over the word in each, and whether
the name is capitalised inside a sentence (evidence, not the decision: customers type
"my square reader"), are the features of one logistic regression trained on
`data/vendor_mentions/cases.jsonl` dev.

**Not wired into the answerer yet (stop 41).** On the test split it reads 47 of 64
mentions right (cost 19) against 32 for the name alone (cost 64) and 42 for capitals
alone (cost 22). But plugged into `FaqAnswerer.named_vendor` and the third-party check,
it also read four product mentions in the conversation cases as everyday words ("our
clover terminal … keeps rebooting", "a new financial year in sage 50", "in excel how do i
make a pivot table", "through stripe on our website", probabilities 0.46 to 0.53 at a
threshold of 0.55) for one word it got right ("my brother says"): three out-of-scope
questions would lose their decline. The features separate the senses too weakly; what
the knowledge base's decline entries say about the message is the next evidence to try.

Error costs: an everyday word read as a product costs `WORD_AS_PRODUCT_COST` (2): a
Makana question is declined, and an urgent report loses its urgent ticket; a product read
as a word costs 1: a question about another company's product gets a Makana article,
which the customer can see is not about it. The threshold minimises that cost on the dev
set's cross-validated probabilities.

    python -m bot.vendor_sense eval --split dev|test [-v]   # last line: JSON
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from bot.cases import InvalidCase, read_cases
from bot.policy_answers import whole_word

ROOT = Path(__file__).resolve().parent.parent
FOLDER = ROOT / "data" / "vendor_mentions"
SENSES = FOLDER / "senses.yml"
CASES = FOLDER / "cases.jsonl"
WINDOW = 5  # words either side of the mention
WORD_AS_PRODUCT_COST = 2.0
THRESHOLDS = tuple(round(0.1 + 0.05 * i, 2) for i in range(17))  # 0.1 … 0.9


class SensesError(ValueError):
    """senses.yml is missing or malformed."""


@dataclass(frozen=True)
class Sense:
    name: str
    product: tuple[str, ...]
    word: tuple[str, ...]


@dataclass(frozen=True)
class Case:
    message: str
    name: str
    product: bool
    split: str


def load_senses(path: str | Path = SENSES) -> dict[str, Sense]:
    import yaml

    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise SensesError(f"{path}: {err}") from None
    if not isinstance(raw, dict) or not raw:
        raise SensesError(f"{path}: expected a mapping of names to their senses")
    senses = {}
    for name, body in raw.items():
        if not isinstance(body, dict) or set(body) != {"product", "word"}:
            raise SensesError(f"{path}: {name}: needs `product` and `word` (lists of descriptions)")
        product, word = body["product"], body["word"]
        if not (isinstance(product, list) and product and isinstance(word, list) and word):
            raise SensesError(f"{path}: {name}: `product` and `word` must be non-empty lists")
        senses[str(name)] = Sense(str(name), tuple(map(str, product)), tuple(map(str, word)))
    return senses


def load_cases(path: str | Path = CASES, split: str | None = None) -> list[Case]:
    def parse(raw: dict) -> Case:
        if raw["split"] not in ("dev", "test"):
            raise InvalidCase("`split` must be dev or test")
        if not isinstance(raw["product"], bool):
            raise InvalidCase("`product` must be true or false")
        message, name = str(raw["message"]), str(raw["name"])
        if whole_word(message, name) is None:
            raise InvalidCase(f"{name!r} does not appear in the message")
        return Case(message, name, raw["product"], raw["split"])

    cases = read_cases(path, parse)
    return [c for c in cases if split is None or c.split == split]


def capitalised_inside_a_sentence(message: str, found: re.Match) -> bool:
    """Typed with a capital where an everyday word would not have one."""
    if not found.group(0)[:1].isupper():
        return False
    before = message[: found.start()].rstrip()
    return bool(before) and not before.endswith((".", "!", "?", ":", "\n", '"', "(", "-"))


def window(message: str, found: re.Match) -> str:
    before = message[: found.start()].split()[-WINDOW:]
    after = message[found.end():].split()[:WINDOW]
    return " ".join([*before, found.group(0), *after])


class SenseCheck:
    """Features per mention → one logistic regression → product or everyday word."""

    def __init__(self, encoder: Any, senses: dict[str, Sense], head: Any = None, threshold: float = 0.5) -> None:
        import numpy as np

        self._encoder = encoder
        self._head = head
        self.threshold = threshold
        self._by_name = {name.lower(): sense for name, sense in senses.items()}
        self._vectors = {
            name: (np.asarray(encoder.encode(list(s.product))), np.asarray(encoder.encode(list(s.word))))
            for name, s in senses.items()
        }

    def sense(self, name: str) -> Sense | None:
        return self._by_name.get(name.lower())

    def features(self, message: str, name: str) -> list[float]:
        """The product's lead over the everyday word around the mention and in the whole
        message, and capitalisation inside a sentence."""
        import numpy as np

        sense = self.sense(name)
        found = whole_word(message, name)
        if sense is None or found is None:
            raise ValueError(f"{name!r}: no sense listed, or not in the message")
        product, word = self._vectors[sense.name]
        around, whole = np.asarray(self._encoder.encode([window(message, found), message]))
        leads = [float((v @ product.T).max() - (v @ word.T).max()) for v in (around, whole)]
        return [*leads, float(capitalised_inside_a_sentence(message, found))]

    def probability(self, message: str, name: str) -> float:
        return float(self._head.predict_proba([self.features(message, name)])[0, 1])

    def names_product(self, message: str, name: str) -> bool:
        """Whether `name` in `message` stands for the other company's product. A name
        with no everyday sense listed always does."""
        if self.sense(name) is None:
            return True
        if whole_word(message, name) is None:
            return False
        return self.probability(message, name) >= self.threshold

    @classmethod
    def fit(cls, encoder: Any, senses: dict[str, Sense], cases: Sequence[Case]) -> "SenseCheck":
        """Train on `cases`; the threshold from 5-fold cross-validated probabilities."""
        import numpy as np

        from bot.cost_threshold import fit_binary

        check = cls(encoder, senses)
        usable = [c for c in cases if check.sense(c.name) is not None]
        x = np.array([check.features(c.message, c.name) for c in usable])
        y = np.array([c.product for c in usable])
        check._head, check.threshold = fit_binary(x, y, lambda read: cost(read, y)["cost"], THRESHOLDS)
        return check


def cost(read_as_product: Sequence[bool], gold: Sequence[bool]) -> dict[str, Any]:
    """Mentions read right, everyday words read as products, products read as words."""
    word_as_product = sum(p and not g for p, g in zip(read_as_product, gold))
    product_as_word = sum(g and not p for p, g in zip(read_as_product, gold))
    return {
        "mentions": len(gold),
        "right": len(gold) - word_as_product - product_as_word,
        "word_as_product": word_as_product,
        "product_as_word": product_as_word,
        "cost": WORD_AS_PRODUCT_COST * word_as_product + product_as_word,
    }


def evaluate(check: SenseCheck, cases: Sequence[Case]) -> dict[str, Any]:
    """The check's figures, beside the name alone (every mention a product, as before) and
    capitalisation alone."""
    gold = [c.product for c in cases]
    figures = cost([check.names_product(c.message, c.name) for c in cases], gold)
    figures["name_alone"] = cost([True] * len(cases), gold)
    figures["capitalisation_alone"] = cost(
        [capitalised_inside_a_sentence(c.message, whole_word(c.message, c.name)) for c in cases], gold)
    figures["threshold"] = check.threshold
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.vendor_sense", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    ev = sub.add_parser("eval", help="fit on dev, score a split (and the name or capitalisation alone)")
    ev.add_argument("--cases", type=Path, default=CASES)
    ev.add_argument("--senses", type=Path, default=SENSES)
    ev.add_argument("--split", choices=("dev", "test"), default="test")
    ev.add_argument("-v", "--verbose", action="store_true", help="list every mention read wrong on stderr")
    args = parser.parse_args(argv)
    try:
        senses = load_senses(args.senses)
        dev, cases = load_cases(args.cases, "dev"), load_cases(args.cases, args.split)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    from bot.contact_facets import open_encoder
    from bot.settings import Settings

    print("fitting on dev …", file=sys.stderr)
    check = SenseCheck.fit(open_encoder(Settings.from_env().index_dir), senses, dev)
    if args.verbose:
        for case in cases:
            p = check.probability(case.message, case.name)
            if (p >= check.threshold) != case.product:
                print(f"[{case.name} product={case.product} p={p:.2f}] {case.message}", file=sys.stderr)
    print(json.dumps({"split": args.split, **evaluate(check, cases)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
