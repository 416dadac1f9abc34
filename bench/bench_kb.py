"""Benchmark of the FAQ index at help-centre scale: one table at growing sizes.

    .venv/bin/python bench/bench_kb.py [--sizes 10000,100000] [--latency-queries 200] [--no-postpone]

Every knowledge base holds the 227 entries of Banking77 and CLINC150 (tests/data, ids
prefixed `b77:` / `clinc:`; 1,362 phrasings with titles), so accuracy@1 on their 4,540
in-scope dev queries (CLINC150's 100 out-of-scope ones are left out of accuracy) is
comparable across rows. The first row is those entries alone: the small adapted index.
Larger rows add distractor entries up to the size asked for: each distractor has 4
questions and a title, every question a splice of two texts of the project's own data
(product FAQ questions, NLU examples of data/nlu/{support,requests,meetings}.yml, triage
dev descriptions) with seeded word dropout and swaps. No Banking77 or CLINC150 text and
no dev query is used to make them. At 100,000 phrasings that is about 19,700
distractors.

Columns, each row built with the default `IndexSettings` (fine-tuning included):
  build        wall-clock of the whole build (adaptation, encoding, faiss, writing);
  w/o adapt    the same build less its adaptation step (its measured encoding + faiss
               + writing time, i.e. what a build with `adapt=None` does);
  p50/p95      single-query search latency (encoding the query included) on dev queries;
  recall@1     phrasing-level: the served index's nearest phrasing against exact search
               over the same vectors (a tie in similarity counts as found); 1.000 where
               the index is exact (IndexFlatIP, up to 20,000 phrasings);
  acc@1        on the Banking77+CLINC150 dev queries;
  RSS          resident memory of a fresh process that loads the index and answers one
               query (the action server's situation), from /proc/self/status.
Rows print as they finish (a long run shows its progress on stderr). Then: adding one
entry in place to the largest index (update, then until a fresh load
answers it), and the cost of postponing re-adaptation: the small KB built with 10% of
its entries held back, those added in place (unseen by the adaptation), against the full
adapted build. Progress goes to stderr; the table and figures to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kb_index import Entry, FaqIndex, IndexSettings, default_encoder, ensure_index, load_faq_jsonl, load_kb_yaml  # noqa: E402
from kb_index.evaluation import Query, evaluate, load_queries  # noqa: E402

DATA = ROOT / "tests" / "data"


def say(message: str) -> None:
    """Progress on stderr, time-stamped."""
    print(f"[bench_kb {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def dev_knowledge() -> tuple[list[Entry], list[Query]]:
    """Banking77 + CLINC150 entries (ids prefixed) and their dev queries."""
    entries: list[Entry] = []
    queries: list[Query] = []
    for name, prefix in (("banking77", "b77:"), ("clinc150", "clinc:")):
        for entry in load_faq_jsonl(DATA / name / "faq.jsonl"):
            entries.append(Entry(id=prefix + entry.id, title=entry.title, questions=list(entry.questions)))
        for query in load_queries(DATA / name / "dev_queries.jsonl"):
            queries.append(Query(query.text, None if query.faq_id is None else prefix + query.faq_id))
    return entries, queries


def distractor_sources() -> list[str]:
    """Texts of the project's own data, none from Banking77/CLINC150 or their queries."""
    import yaml

    texts = [q for e in load_kb_yaml(ROOT / "data" / "faq") for q in e.questions]
    for name in ("support", "requests", "meetings"):
        raw = yaml.safe_load((ROOT / "data" / "nlu" / f"{name}.yml").read_text(encoding="utf-8"))
        for item in raw.get("nlu", []):
            for line in str(item.get("examples", "")).splitlines():
                line = re.sub(r"\[([^\]]+)\](\([^)]*\)|\{[^}]*\})", r"\1", line.strip().removeprefix("- "))
                if line:
                    texts.append(line)
    for line in (ROOT / "data" / "triage" / "dev.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            texts.append(json.loads(line)["description"])
    return sorted({t for t in texts if len(t.split()) >= 3})


def splice(a: str, b: str, rng: random.Random) -> str:
    """First part of `a`, last part of `b`, with ~10% of words dropped and maybe a swap."""
    left, right = a.split(), b.split()
    words = left[: max(2, len(left) // 2)] + right[len(right) // 2 :][:12]
    words = [w for w in words if rng.random() > 0.1] or words
    if len(words) > 3 and rng.random() < 0.5:
        i = rng.randrange(len(words) - 1)
        words[i], words[i + 1] = words[i + 1], words[i]
    return " ".join(words)


def distractors(count: int, seed: int = 0) -> list[Entry]:
    """`count` distractor entries of 4 questions + title (5 phrasings each)."""
    pool = distractor_sources()
    rng = random.Random(seed)
    entries = []
    for number in range(count):
        questions = [splice(rng.choice(pool), rng.choice(pool), rng) for _ in range(4)]
        title = f"Topic {number}: " + " ".join(splice(rng.choice(pool), rng.choice(pool), rng).split()[:6])
        entries.append(Entry(id=f"d{number}", title=title, questions=questions))
    return entries


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def time_queries(index: FaqIndex, queries: list[str]) -> list[float]:
    """Milliseconds of each single-query search (the encoder is warmed up first)."""
    index.search(queries[0])
    samples = []
    for query in queries:
        started = time.perf_counter()
        index.search(query)
        samples.append(1000 * (time.perf_counter() - started))
    return samples


def recall_at_1(index: FaqIndex, texts: list[str]) -> float:
    """Phrasing-level recall@1 of the served faiss index against exact search."""
    import faiss

    served = index._index
    if isinstance(served, faiss.IndexFlat):
        return 1.0
    vectors = served.reconstruct_n(0, served.ntotal)
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    queries = np.ascontiguousarray(index.encoder.encode(texts), dtype=np.float32)
    approx_sims, approx_ids = served.search(queries, 1)
    exact_sims, exact_ids = exact.search(queries, 1)
    found = (approx_ids[:, 0] == exact_ids[:, 0]) | (approx_sims[:, 0] >= exact_sims[:, 0] - 1e-6)
    return float(np.mean(found))


RSS_PROBE = """
import sys, json
sys.path.insert(0, {root!r})
from kb_index import FaqIndex
index = FaqIndex.load({folder!r})
index.search("how do I change my card pin")
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
print(json.dumps({{k: int(status[k].split()[0]) // 1024 for k in ("VmRSS", "VmHWM")}}))
"""


def resident_memory(folder: Path) -> dict:
    """VmRSS / VmHWM (MB) of a fresh process holding the index and its encoder."""
    code = RSS_PROBE.format(root=str(ROOT), folder=str(folder))
    env = dict(os.environ, TQDM_DISABLE="1")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_row(label: str, entries: list[Entry], queries: list[Query], folder: Path, latency_queries: int) -> dict:
    """Build, evaluate, time and measure one knowledge base."""
    say(f"{label}: building {len(entries):,} entries (adaptation included)")
    started = time.perf_counter()
    index = ensure_index(entries, folder, IndexSettings(), default_encoder, incremental=False)
    build_s = time.perf_counter() - started
    meta = index.meta
    say(f"{label}: built in {build_s:.0f} s (adapt {meta['adapt_seconds']} s, encode {meta['encode_seconds']} s); evaluating")
    accuracy = evaluate(index, queries)["accuracy_at_1"]
    rng = random.Random(7)
    sample = [q.text for q in rng.sample(queries, latency_queries)]
    say(f"{label}: latency and recall on {latency_queries} single queries")
    latency = time_queries(index, sample)
    recall = recall_at_1(index, sample)
    say(f"{label}: resident memory of a fresh process")
    memory = resident_memory(folder)
    return {
        "label": label,
        "entries": len(entries),
        "phrasings": meta["phrasings"],
        "faiss": type(index._index).__name__,
        "adapted": f"{meta['adapt_steps']} steps" + (" (sampled)" if meta.get("adapt_sampled") else ""),
        "build_s": build_s,
        "no_adapt_s": build_s - meta["adapt_seconds"],
        "p50": statistics.median(latency),
        "p95": percentile(latency, 0.95),
        "recall1": recall,
        "accuracy": accuracy,
        "rss_mb": memory["VmRSS"],
        "hwm_mb": memory["VmHWM"],
    }


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


def bench_postpone(entries: list[Entry], queries: list[Query], folder: Path, full_accuracy: float, full_held: float) -> dict:
    """Accuracy when 10% of the entries were added in place after the adaptation."""
    rng = random.Random(3)
    held = set(rng.sample([e.id for e in entries], len(entries) // 10))
    settings = IndexSettings(incremental_max_fraction=0.5)
    say(f"postpone: adapted build without {len(held)} entries, then adding them in place")
    ensure_index([e for e in entries if e.id not in held], folder, settings, default_encoder, incremental=False)
    late = ensure_index(entries, folder, settings, default_encoder)
    figures = evaluate(late, queries)
    on_held = [q for q in queries if q.faq_id in held]
    held_figures = evaluate(late, on_held)
    return {
        "held": len(held), "held_queries": len(on_held), "full": full_accuracy, "full_held": full_held,
        "late": figures["accuracy_at_1"], "late_held": held_figures["accuracy_at_1"],
        "updated": late.meta.get("changed_since_build"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="phrasing counts of the rows after the small KB")
    parser.add_argument("--latency-queries", type=int, default=200)
    parser.add_argument("--no-postpone", action="store_true")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]

    entries, queries = dev_knowledge()
    small_phrasings = sum(len(e.questions) + 1 for e in entries)
    print(f"FAQ index at scale (2 shared cores; load average {os.getloadavg()[0]:.1f} at start); rows print as they finish")
    print(
        "| phrasings | entries | faiss | adaptation | build | w/o adapt | query p50 / p95 | recall@1 vs exact "
        "| acc@1 B77+CLINC dev | RSS (peak) | load avg |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-kb-") as tmp:
        tmp_path = Path(tmp)
        small = bench_row(f"{small_phrasings / 1000:.1f}k", entries, queries, tmp_path / "small", args.latency_queries)
        print_row(small)
        largest, largest_entries = tmp_path / "small", entries
        for size in sizes:
            kb = entries + distractors(max(0, (size - small_phrasings) // 5))
            folder = tmp_path / f"n{size}"
            print_row(bench_row(f"{size // 1000}k", kb, queries, folder, args.latency_queries))
            largest, largest_entries = folder, kb
        say("adding one entry in place to the largest index")
        added = bench_add_one(largest_entries, largest)
        print(
            f"add one entry in place ({len(largest_entries):,} entries): update {added['update_s']:.2f} s, then a fresh "
            f"load answers it after {added['searchable_s']:.2f} s (top-1 is the new entry: {added['found']})",
            flush=True,
        )
        if not args.no_postpone:
            rng = random.Random(3)
            held = set(rng.sample([e.id for e in entries], len(entries) // 10))
            held_accuracy = evaluate(FaqIndex.load(tmp_path / "small"), [q for q in queries if q.faq_id in held])["accuracy_at_1"]
            postpone = bench_postpone(entries, queries, tmp_path / "late", small["accuracy"], held_accuracy)
            print(
                f"postponed re-adaptation ({postpone['held']} of {len(entries)} entries added in place after adapting): "
                f"acc@1 {postpone['late']:.4f} vs {postpone['full']:.4f} full build; on the "
                f"{postpone['held_queries']} queries of the added entries {postpone['late_held']:.4f} vs {postpone['full_held']:.4f}",
                flush=True,
            )


def print_row(row: dict) -> None:
    """One line of the table, as soon as its row is measured."""
    print(
        f"| {row['label']} ({row['phrasings']:,}) | {row['entries']:,} | {row['faiss']} | {row['adapted']} "
        f"| {row['build_s']:.0f} s | {row['no_adapt_s']:.0f} s | {row['p50']:.1f} / {row['p95']:.1f} ms "
        f"| {row['recall1']:.3f} | {row['accuracy']:.4f} | {row['rss_mb']} MB ({row['hwm_mb']} MB) | {os.getloadavg()[0]:.1f} |",
        flush=True,
    )


if __name__ == "__main__":
    main()
