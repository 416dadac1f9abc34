"""Command line: `python -m kb_index {build,search,eval} ...`.

* `build --kb data/faq --out kb_index/build` builds the index, keeps it if unchanged, or
  updates it in place when a few entries changed (`--full` rebuilds and re-adapts).
* `search --index DIR "query"` prints the result as JSON.
* `eval --faq FAQ.jsonl | --kb FOLDER --queries QUERIES.jsonl` builds an index with the
  default settings in a temporary folder and prints the figures as the last stdout line.
* `fit-confidence --faq FAQ.jsonl --queries QUERIES.jsonl [--no-adapt]` builds an index
  the same way and fits the confidence model's coefficients on those queries (the
  defaults in IndexSettings come from Banking77's dev queries).

Progress goes to stderr; exit status 2 means bad input (missing or invalid files).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from kb_index.encoder import default_encoder
from kb_index.evaluation import (
    confidence_examples,
    coverage_table,
    evaluate,
    fit_confidence,
    load_queries,
    split_of,
)
from kb_index.index import FaqIndex, IndexFolderError, IndexSettings, build_index, content_hash, ensure_index
from kb_index.knowledge import KnowledgeError, load_faq_jsonl, load_kb_yaml


def parser() -> argparse.ArgumentParser:
    """The argument parser of the three sub-commands."""
    top = argparse.ArgumentParser(prog="python -m kb_index", description="FAQ semantic index")
    commands = top.add_subparsers(dest="command", required=True)

    build = commands.add_parser("build", help="build the index of a YAML knowledge base")
    build.add_argument("--kb", type=Path, default=Path("data/faq"), help="folder of *.yml entries")
    build.add_argument("--out", type=Path, default=Path("kb_index/build"), help="index folder")
    build.add_argument(
        "--full", action="store_true",
        help="rebuild and adapt the encoder again even when a few changed entries could be updated in place",
    )

    search = commands.add_parser("search", help="search a built index")
    search.add_argument("--index", type=Path, default=Path("kb_index/build"))
    search.add_argument("-k", type=int, default=3)
    search.add_argument("query")

    ev = commands.add_parser("eval", help="build from a FAQ and score labelled queries")
    source = ev.add_mutually_exclusive_group(required=True)
    source.add_argument("--faq", type=Path, help="FAQ as JSON Lines")
    source.add_argument("--kb", type=Path, help="FAQ as a folder of *.yml entries")
    ev.add_argument("--queries", type=Path, required=True, help="labelled queries, JSON Lines")
    ev.add_argument("-k", type=int, default=3)
    ev.add_argument(
        "--split", choices=("dev", "test", "all"), default="all",
        help="score only one fixed half of the queries (kb_index.evaluation.split_of): tune on dev, report on test",
    )
    ev.add_argument("--index", type=Path, help="use this built index of the same entries instead of building one")

    fit = commands.add_parser("fit-confidence", help="fit the confidence model on labelled queries")
    fit_source = fit.add_mutually_exclusive_group(required=True)
    fit_source.add_argument("--faq", type=Path, help="FAQ as JSON Lines")
    fit_source.add_argument("--kb", type=Path, help="FAQ as a folder of *.yml entries")
    fit.add_argument("--queries", type=Path, required=True, help="labelled queries, JSON Lines")
    fit.add_argument("--no-adapt", action="store_true", help="fit for the bundled encoder (IndexSettings.confidence_unadapted)")
    return top


def run(args: argparse.Namespace) -> dict:
    """Carry out one parsed command; returns the JSON-able result to print."""
    if args.command == "build":
        started = time.perf_counter()
        entries = load_kb_yaml(args.kb)
        if args.full:
            index = build_index(entries, args.out, IndexSettings(), default_encoder)
        else:
            index = ensure_index(entries, args.out, IndexSettings(), default_encoder)
        return {
            "index": str(args.out),
            "entries": len(index),
            "phrasings": index.meta["phrasings"],
            "adapted": index.meta["adapted"],
            "build_seconds": index.meta["build_seconds"],
            "changed_since_build": index.meta.get("changed_since_build", 0),
            "seconds": round(time.perf_counter() - started, 2),
        }
    if args.command == "search":
        result = FaqIndex.load(args.index).search(args.query, k=args.k)
        return asdict(result)
    entries = load_faq_jsonl(args.faq) if args.faq else load_kb_yaml(args.kb)
    if args.command == "fit-confidence":
        return fit_command(entries, load_queries(args.queries), args.no_adapt)
    queries = [q for q in load_queries(args.queries) if args.split in ("all", split_of(q.text))]
    started = time.perf_counter()
    if args.index is not None:
        # A built index of the same entries (e.g. kb_index/build): no rebuild.
        index = FaqIndex.load(args.index)
        if index.meta.get("hash") != content_hash(entries, IndexSettings()):
            raise IndexFolderError(f"{args.index} was not built from these entries with the default settings")
        build_seconds = 0.0
        figures = evaluate(index, queries, k=args.k)
    else:
        with tempfile.TemporaryDirectory(prefix="kb_index-eval-") as folder:
            index = ensure_index(entries, Path(folder) / "index", IndexSettings(), default_encoder)
            build_seconds = round(time.perf_counter() - started, 2)
            figures = evaluate(index, queries, k=args.k)
    print("risk-coverage (answered precision when only the most confident answers are given):", file=sys.stderr)
    print(coverage_table(figures["risk_coverage"]), file=sys.stderr)
    figures["entries"] = len(entries)
    figures["split"] = args.split
    figures["build_seconds"] = build_seconds
    return figures


def fit_command(entries: list, queries: list, no_adapt: bool) -> dict:
    """Build an index of `entries` (adapted unless `no_adapt`) and fit the confidence model."""
    settings = IndexSettings(adapt=None) if no_adapt else IndexSettings()
    with tempfile.TemporaryDirectory(prefix="kb_index-fit-") as folder:
        index = build_index(entries, Path(folder) / "index", settings, default_encoder)
        features, right = confidence_examples(index, queries)
        adapted = index.meta["adapted"]
    bias, w_similarity, w_margin = fit_confidence(features, right)
    return {
        "setting": "confidence_adapted" if adapted else "confidence_unadapted",
        "coefficients": [bias, w_similarity, w_margin],
        "queries": len(right),
        "top1_right": round(float(right.mean()), 4),
    }


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse, run, print one JSON line on stdout."""
    # The bundled model is local; never let a library reach for the hub.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args = parser().parse_args(argv)
    try:
        output = run(args)
    except (KnowledgeError, IndexFolderError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(output, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
