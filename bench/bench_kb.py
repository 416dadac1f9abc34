"""Benchmark of the FAQ index: build time, load time, query latency, and ANN recall at scale.

    .venv/bin/python bench/bench_kb.py [--kb data/faq] [--phrasings 100000] [--queries 300]

(a) The product knowledge base (YAML folder), default settings (fine-tuned encoder).
    Skipped with a message when the folder does not exist.
(b) A synthetic knowledge base of `--phrasings` phrasings (default 100,000): entries of
    4 questions + title, each question a seeded perturbation (word dropout, adjacent
    swap, one inserted vocabulary word) of a Banking77/CLINC150 phrasing or dev query
    from tests/data. Past `IndexSettings.exact_max_phrasings` the index is HNSW, and
    past `adapt_max_phrasings` fine-tuning is skipped, so this measures the large-KB
    path. Its recall@1/@3 against exact search on the same vectors is printed, at the
    phrasing level (faiss neighbours) and at the entry level (the final top-1 answer).

(c) Adding one entry to the product knowledge base in place (`--skip-large` runs only
    (a) and (c)): the update itself, and until a fresh load answers the new entry (what an
    action server does on its next question).
(d) `--postpone`: the accuracy cost of postponing re-adaptation. Banking77 with 10% of
    its entries held back is built (adapted), the held-back entries are then added in
    place (never seen by the adaptation), and accuracy on Banking77's dev queries is
    compared with a full adapted build of all entries.

Queries for latency are fresh perturbations, searched one at a time (as the bot does).
All figures go to stdout; timings are wall-clock on whatever CPU is free.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kb_index import Entry, FaqIndex, IndexSettings, default_encoder, ensure_index, load_kb_yaml  # noqa: E402
from kb_index.knowledge import KnowledgeError  # noqa: E402


def percentiles(samples_ms: list[float]) -> str:
    """p50/p95 of a latency sample, formatted."""
    ordered = sorted(samples_ms)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return f"p50 {statistics.median(ordered):.1f} ms, p95 {p95:.1f} ms"


def time_queries(index: FaqIndex, queries: list[str]) -> list[float]:
    """Milliseconds of each single-query search."""
    index.search(queries[0])  # first call loads the encoder; timed separately
    samples = []
    for query in queries:
        started = time.perf_counter()
        index.search(query)
        samples.append(1000 * (time.perf_counter() - started))
    return samples


def bench_product(kb: Path, queries: int) -> None:
    """(a) Build, load and query the product knowledge base."""
    print(f"== (a) product knowledge base {kb}")
    try:
        entries = load_kb_yaml(kb)
    except KnowledgeError as err:
        print(f"skipped: {err}")
        return
    with tempfile.TemporaryDirectory(prefix="bench-kb-") as folder:
        started = time.perf_counter()
        built = ensure_index(entries, Path(folder) / "index", IndexSettings(), default_encoder)
        build_s = time.perf_counter() - started
        started = time.perf_counter()
        index = FaqIndex.load(Path(folder) / "index")
        load_s = time.perf_counter() - started
        started = time.perf_counter()
        index.search("warm up")
        first_s = time.perf_counter() - started
        rng = random.Random(1)
        pool = [q for e in entries for q in e.questions]
        sample = [perturb(rng.choice(pool), rng, vocabulary(pool)) for _ in range(queries)]
        latency = time_queries(index, sample)
        added = bench_add_one(entries, Path(folder) / "index")
    print(
        f"entries {len(entries)}, phrasings {built.meta['phrasings']}, adapted {built.meta['adapted']} "
        f"({built.meta['adapt_steps']} steps)"
    )
    print(f"build {build_s:.1f} s; load {1000 * load_s:.0f} ms (+ encoder on first query {first_s:.1f} s)")
    print(f"query latency ({len(latency)} single queries): {percentiles(latency)}")
    print(
        f"== (c) add one entry in place: update {added['update_s']:.2f} s, "
        f"then a fresh load answers it after {added['searchable_s']:.2f} s more "
        f"(total {added['update_s'] + added['searchable_s']:.2f} s; top-1 is the new entry: {added['found']})"
    )


def bench_add_one(entries: list[Entry], folder: Path) -> dict:
    """Time adding one entry in place, and until a freshly loaded index answers it."""
    new = Entry(
        id="bench_added", title="Paying with a gift voucher",
        questions=["can I pay my subscription with a gift voucher", "do you take gift vouchers", "voucher payment"],
        answer="Not yet.",
    )
    started = time.perf_counter()
    ensure_index(list(entries) + [new], folder, IndexSettings(), default_encoder)
    update_s = time.perf_counter() - started
    started = time.perf_counter()
    result = FaqIndex.load(folder).search("could I use a gift voucher to pay")
    searchable_s = time.perf_counter() - started
    return {"update_s": update_s, "searchable_s": searchable_s, "found": result.candidates[0].entry_id == new.id}


def bench_postpone() -> None:
    """(d) Accuracy of an index whose last 10% of entries were added after adaptation."""
    from kb_index import load_faq_jsonl
    from kb_index.evaluation import evaluate, load_queries

    data = ROOT / "tests" / "data" / "banking77"
    entries = load_faq_jsonl(data / "faq.jsonl")
    queries = load_queries(data / "dev_queries.jsonl")
    rng = random.Random(3)
    held = set(rng.sample([e.id for e in entries], max(1, len(entries) // 10)))
    settings = IndexSettings(incremental_max_fraction=0.5)
    print(f"== (d) postponing re-adaptation: Banking77, {len(held)} of {len(entries)} entries added in place")
    with tempfile.TemporaryDirectory(prefix="bench-kb-postpone-") as folder:
        full = evaluate(ensure_index(entries, Path(folder) / "full", settings, default_encoder), queries)
        ensure_index([e for e in entries if e.id not in held], Path(folder) / "late", settings, default_encoder)
        late_index = ensure_index(entries, Path(folder) / "late", settings, default_encoder)
        late = evaluate(late_index, queries)
    in_held = [q for q in queries if q.faq_id in held]
    print(
        f"accuracy@1 on {len(queries)} dev queries: full build {full['accuracy_at_1']:.3f}, "
        f"added in place {late['accuracy_at_1']:.3f} (updated in place: {late_index.meta.get('changed_since_build')} entries; "
        f"{len(in_held)} queries ask the added entries)"
    )


def vocabulary(texts: list[str]) -> list[str]:
    """Distinct lower-case words of the texts, sorted (for seeded insertions)."""
    return sorted({w for t in texts for w in t.lower().split()})


def perturb(text: str, rng: random.Random, vocab: list[str]) -> str:
    """A seeded variation: drop ~15% of words, maybe swap two neighbours, insert one word."""
    words = [w for w in text.split() if rng.random() > 0.15] or text.split()
    if len(words) > 2 and rng.random() < 0.5:
        i = rng.randrange(len(words) - 1)
        words[i], words[i + 1] = words[i + 1], words[i]
    words.insert(rng.randrange(len(words) + 1), rng.choice(vocab))
    return " ".join(words)


def synthetic_entries(phrasings: int, seed: int = 0) -> tuple[list[Entry], list[str]]:
    """Entries of 4 questions + title adding up to `phrasings`, and a pool of source texts."""
    data = ROOT / "tests" / "data"
    pool: list[str] = []
    for name in ("banking77", "clinc150"):
        for line in (data / name / "faq.jsonl").read_text().splitlines():
            pool.extend(json.loads(line)["questions"])
        for line in (data / name / "dev_queries.jsonl").read_text().splitlines():
            pool.append(json.loads(line)["text"])
    vocab = vocabulary(pool)
    rng = random.Random(seed)
    entries = []
    for number in range(phrasings // 5):
        source = rng.choice(pool)
        questions = [perturb(source, rng, vocab) for _ in range(4)]
        entries.append(Entry(id=f"syn{number}", title=f"{number} {source[:40]}", questions=questions))
    return entries, pool


def bench_large(phrasings: int, queries: int) -> None:
    """(b) The large-KB path: build, load, latency, and HNSW recall against exact search."""
    import faiss

    print(f"== (b) synthetic knowledge base of {phrasings:,} phrasings")
    entries, pool = synthetic_entries(phrasings)
    settings = IndexSettings()
    with tempfile.TemporaryDirectory(prefix="bench-kb-large-") as folder:
        started = time.perf_counter()
        built = ensure_index(entries, Path(folder) / "index", settings, default_encoder)
        build_s = time.perf_counter() - started
        started = time.perf_counter()
        index = FaqIndex.load(Path(folder) / "index")
        load_s = time.perf_counter() - started
        kind = type(index._index).__name__
        print(
            f"entries {len(entries):,}, phrasings {built.meta['phrasings']:,}, faiss {kind}, "
            f"adapted {built.meta['adapted']} (fine-tuning skipped above {settings.adapt_max_phrasings:,} phrasings)"
        )
        print(f"build {build_s:.1f} s (encoding dominates); load {1000 * load_s:.0f} ms")

        rng = random.Random(2)
        vocab = vocabulary(pool)
        sample = [perturb(rng.choice(e.questions), rng, vocab) for e in rng.sample(entries, queries)]
        latency = time_queries(index, sample)
        print(f"query latency ({len(latency)} single queries): {percentiles(latency)}")

        # Exact search over the very same vectors, for recall of the approximate index.
        vectors = index._index.reconstruct_n(0, index._index.ntotal)
        exact = faiss.IndexFlatIP(vectors.shape[1])
        exact.add(vectors)
        query_vectors = index.encoder.encode(sample)
        _, approx_ids = index._index.search(query_vectors, 3)
        _, exact_ids = exact.search(query_vectors, 3)
        recall1 = float(np.mean(approx_ids[:, 0] == exact_ids[:, 0]))
        recall3 = float(np.mean([len(set(a) & set(b)) / 3 for a, b in zip(approx_ids, exact_ids)]))
        exact_index = FaqIndex(index.meta, exact, index._centroids, index.encoder, settings)
        same_answer = np.mean(
            [
                a[0].entry_id == b[0].entry_id
                for a, b in zip(index.rank(query_vectors, 3), exact_index.rank(query_vectors, 3))
            ]
        )
        print(
            f"HNSW vs exact on {queries} queries: recall@1 {recall1:.3f}, recall@3 {recall3:.3f} (phrasings); "
            f"same top-1 entry {same_answer:.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kb", type=Path, default=ROOT / "data" / "faq")
    parser.add_argument("--phrasings", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--skip-large", action="store_true", help="only the product knowledge base and adding an entry")
    parser.add_argument("--postpone", action="store_true", help="also measure the cost of postponing re-adaptation")
    args = parser.parse_args()
    bench_product(args.kb, args.queries)
    if args.postpone:
        bench_postpone()
    if not args.skip_large:
        bench_large(args.phrasings, args.queries)


if __name__ == "__main__":
    main()
