"""The FAQ index: build it from entries, keep it on disk, load it, search it.

A built index is a folder holding `meta.json` (format version, content hash, settings,
entries), `phrasings.faiss` (one vector per phrasing) and `centroids.npy`
(one vector per entry), plus `encoder/` when the encoder was fine-tuned on the
knowledge base. Folders are written atomically: a temporary sibling is filled and then
renamed into place (an old folder is first renamed aside, then deleted), so a reader
sees the old index, the new one, or briefly none, but never half of one.

Scoring: the query's nearest phrasings are fetched from faiss, and each entry among
them scores `centroid_weight * cos(query, entry centroid) + (1 - centroid_weight) *
max cos(query, entry phrasing)`. A logistic model of that score and of its margin over
the best other entry turns it into the probability that the entry is the right answer
(`confidence`); the index abstains when the best is below `IndexSettings.threshold`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from kb_index.encoder import AdaptSettings, Encoder, adaptation_steps, default_encoder
from kb_index.knowledge import Entry

# Bump when the folder layout or the scoring changes, so old folders get rebuilt.
FORMAT_VERSION = 1

EncoderFactory = Callable[[Path | None], Encoder]


class IndexFolderError(RuntimeError):
    """An index folder is missing, incomplete or written by an incompatible version."""


@dataclass(frozen=True)
class IndexSettings:
    """Everything that shapes an index; part of its content hash.

    `threshold` applies to the calibrated confidence. It is 0.55: a wrong answer costs
    more than an abstention (which offers "did you mean…" and a person), and 0.55 is the
    lowest threshold at which CLINC150 dev's answered precision reaches 0.95 (0.951, with
    in-scope accuracy 0.874; the old single-score calibration gave 0.836 in-scope at that
    precision). `exact_max_phrasings` is the size up
    to which faiss searches exhaustively (IndexFlatIP); above it an HNSW graph is built,
    whose recall against exact search bench/bench_kb.py measures. Fine-tuning (`adapt`)
    is bounded by `AdaptSettings.max_steps` (80 steps, ~2 min on 2 cores) and runs up to
    `adapt_max_phrasings`, drawing from every phrasing. Above it the bundled encoder is
    used as it is, unless `adapt_large` asks for adaptation on a sample stratified by
    entry (at most `adapt_per_entry` seeded phrasings of each). Measured with
    bench/bench_kb.py on the Banking77+CLINC150 dev queries (2026-12-03): adaptation lifts
    1,362 phrasings from 0.828 to 0.861, but lowers 9,997 from 0.822 to 0.797 and 99,997
    (sampled) from 0.810 to 0.600, and its vectors cost HNSW recall (0.995 → 0.960).
    Between (2026-12-05, same bench, adapted against bundled): 2,497 phrasings 0.849 against
    0.827, 3,997 0.832 against 0.827, 5,997 0.819 adapted. So adaptation runs up to 3,000.
    The limit was 2,000, a cliff just above this project's knowledge base (1,659
    phrasings): with 380 phrasings more (2,039) the build skipped adaptation, and on the
    conversation cases covered right fell from 353 to 337 of 421 (in process, seed 0).
    """

    threshold: float = 0.55
    use_titles: bool = True
    # An index is updated in place (only the changed entries re-embedded, the adapted
    # encoder kept) while the entries changed since the last full build stay at most
    # this fraction of the knowledge base; beyond it the next build re-adapts.
    incremental_max_fraction: float = 0.2
    centroid_weight: float = 0.5
    retrieve: int = 64
    adapt: AdaptSettings | None = field(default_factory=AdaptSettings)
    adapt_max_phrasings: int = 3_000
    adapt_large: bool = False
    adapt_per_entry: int = 4
    exact_max_phrasings: int = 20_000
    hnsw_neighbours: int = 32
    hnsw_ef_construction: int = 128
    hnsw_ef_search: int = 256
    # The confidence that an entry answers the query: P(right) = σ(bias + w_similarity ·
    # similarity + w_margin · margin), where margin is the entry's similarity minus the
    # best other entry's (a query that sits between two entries is not sure of either).
    # Fitted by logistic regression on the Banking77 dev queries against an index of its
    # 77 entries (`python -m kb_index fit-confidence`), one fit for the adapted encoder
    # and one for the bundled encoder (which scores lower); CLINC150 dev is the held-out
    # check (bench/README.md). (bias, w_similarity, w_margin):
    confidence_adapted: tuple[float, float, float] = (-2.924, 4.014, 12.343)
    confidence_unadapted: tuple[float, float, float] = (-2.78, 3.463, 18.109)


@dataclass(frozen=True)
class Hit:
    """One candidate entry for a query; `score` is the calibrated confidence in [0, 1]."""

    entry_id: str
    title: str
    score: float
    similarity: float


@dataclass(frozen=True)
class SearchResult:
    """The best entry (None when the index abstains) and the top-k candidates, best first."""

    query: str
    answer: Hit | None
    candidates: list[Hit]


def content_hash(entries: Sequence[Entry], settings: IndexSettings) -> str:
    """Hash of what determines an index: entries, settings and the format version."""
    shaping = asdict(settings)
    shaping.pop("incremental_max_fraction")  # decides when to rebuild, not what is built
    payload = {
        "format": FORMAT_VERSION,
        "settings": shaping,
        "entries": [asdict(e) for e in entries],
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()


def phrasings_of(entry: Entry, settings: IndexSettings) -> list[str]:
    """The texts that stand for an entry: its questions, and its title when enabled."""
    texts = list(entry.questions)
    if settings.use_titles and entry.title not in texts:
        texts.append(entry.title)
    return texts


def progress_bar(total: int, desc: str):
    """A tqdm bar on stderr (the last stdout line is reserved for results)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, file=sys.stderr, leave=False, mininterval=1.0)


def build_index(
    entries: Sequence[Entry],
    folder: str | Path,
    settings: IndexSettings = IndexSettings(),
    encoder_factory: EncoderFactory = default_encoder,
) -> "FaqIndex":
    """Build an index of `entries` into `folder` atomically and return it, loaded."""
    folder = Path(folder)
    if not entries:
        raise ValueError("cannot build an index of no entries")
    started = time.perf_counter()
    groups = [phrasings_of(e, settings) for e in entries]
    texts = [t for g in groups for t in g]
    owners = np.array([i for i, g in enumerate(groups) for _ in g], dtype=np.int64)

    encoder = encoder_factory(None)
    adapted = False
    steps = 0
    sampled = len(texts) > settings.adapt_max_phrasings
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    can_adapt = settings.adapt is not None and hasattr(encoder, "adapt")
    if can_adapt and sampled and not settings.adapt_large:
        # Said where the build is watched: answers get worse without it on a small KB.
        print(
            f"note: {len(texts):,} phrasings is over adapt_max_phrasings ({settings.adapt_max_phrasings:,}): "
            "the encoder is used without fine-tuning (see IndexSettings)",
            file=sys.stderr,
        )
    elif can_adapt:
        chosen = adaptation_sample(groups, settings) if sampled else groups
        steps = adaptation_steps([len(g) for g in chosen], settings.adapt)
        if steps:
            with progress_bar(steps, "adapting encoder") as bar:
                encoder = encoder.adapt(chosen, settings.adapt, bar.update)
            adapted = True
    timings["adapt_seconds"] = round(time.perf_counter() - clock, 2)

    clock = time.perf_counter()
    vectors = encode_in_batches(encoder, texts, "encoding phrasings")
    timings["encode_seconds"] = round(time.perf_counter() - clock, 2)
    clock = time.perf_counter()
    centroids = entry_centroids(vectors, owners, len(entries))
    index = make_faiss_index(vectors, settings)
    timings["faiss_seconds"] = round(time.perf_counter() - clock, 2)

    def meta_now() -> dict:
        return {
            "format": FORMAT_VERSION,
            "hash": content_hash(entries, settings),
            "settings": asdict(settings),
            "adapted": adapted,
            "adapt_steps": steps,
            "adapt_sampled": adapted and sampled,
            "phrasings": len(texts),
            "owners": owners.tolist(),
            "entries": [asdict(e) for e in entries],
            "build_seconds": round(time.perf_counter() - started, 2),
            **timings,
        }

    meta = write_folder(folder, index, centroids, meta_now, encoder.save if adapted else None)
    return FaqIndex(meta, index, centroids, encoder, settings)


def adaptation_sample(groups: Sequence[Sequence[str]], settings: IndexSettings) -> list[list[str]]:
    """At most `settings.adapt_per_entry` phrasings of each entry, a seeded choice: the
    sample a large knowledge base is adapted on, so that every entry stays represented
    while the phrasings the steps draw from stay bounded per entry."""
    import random

    seed = settings.adapt.seed if settings.adapt is not None else 0
    rng = random.Random(seed)
    cap = max(2, settings.adapt_per_entry)
    return [list(g) if len(g) <= cap else rng.sample(list(g), cap) for g in groups]


def write_folder(
    folder: Path, index, centroids: np.ndarray, meta: Callable[[], dict], write_encoder: Callable[[Path], None] | None,
) -> dict:
    """Write an index folder atomically: a temporary sibling filled, then renamed into place.

    `meta` is called once the vectors (and the encoder, through `write_encoder(path)`) are
    written, so that timings it records include the writing; returns what it gave.
    """
    import faiss

    folder.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
    try:
        faiss.write_index(index, str(temp / "phrasings.faiss"))
        np.save(temp / "centroids.npy", centroids)
        if write_encoder is not None:
            write_encoder(temp / "encoder")
        written = meta()
        (temp / "meta.json").write_text(json.dumps(written, ensure_ascii=False), encoding="utf-8")
        replace_folder(temp, folder)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return written


def replace_folder(new: Path, target: Path) -> None:
    """Move `new` to `target`, replacing any previous folder with two renames."""
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.rename(target, old)
        os.rename(new, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(new, target)


def ensure_index(
    entries: Sequence[Entry],
    folder: str | Path,
    settings: IndexSettings = IndexSettings(),
    encoder_factory: EncoderFactory = default_encoder,
    incremental: bool = True,
) -> "FaqIndex":
    """Load the index in `folder`, bringing it up to date first if entries, settings or format changed.

    A few changed entries update the index in place (`update_index`); otherwise, or with
    `incremental=False`, it is rebuilt and the encoder adapted again.
    """
    folder = Path(folder)
    wanted = content_hash(entries, settings)
    try:
        meta = read_meta(folder)
    except IndexFolderError:
        meta = None
    if meta is not None and meta.get("hash") == wanted:
        try:
            return FaqIndex.load(folder, encoder_factory=encoder_factory)
        except IndexFolderError:
            pass  # damaged folder: rebuild it below
    elif meta is not None and incremental:
        try:
            updated = update_index(entries, folder, settings, encoder_factory)
        except IndexFolderError:
            updated = None  # damaged folder: rebuild it below
        if updated is not None:
            return updated
    return build_index(entries, folder, settings, encoder_factory)


@dataclass(frozen=True)
class Changes:
    """Entries of a new knowledge base against a built index: by id."""

    added: list[Entry]
    changed: list[Entry]
    removed: list[str]

    @property
    def count(self) -> int:
        return len(self.added) + len(self.changed) + len(self.removed)


def diff_entries(meta: dict, entries: Sequence[Entry]) -> Changes:
    """What differs between the live entries of a built index and `entries`."""
    deleted = set(meta.get("deleted_slots", []))
    old = {raw["id"]: Entry(**raw) for slot, raw in enumerate(meta["entries"]) if slot not in deleted}
    new = {e.id: e for e in entries}
    return Changes(
        added=[e for e in entries if e.id not in old],
        changed=[e for e in entries if e.id in old and old[e.id] != e],
        removed=[i for i in old if i not in new],
    )


def update_index(
    entries: Sequence[Entry],
    folder: str | Path,
    settings: IndexSettings = IndexSettings(),
    encoder_factory: EncoderFactory = default_encoder,
) -> "FaqIndex | None":
    """Bring a built index up to date with `entries` in place; None when a full build is due.

    Only added and changed entries are embedded (with the index's own, possibly adapted,
    encoder) and appended to the faiss index; the phrasings of changed and removed
    entries are tombstoned (never returned by a search). The folder is replaced
    atomically as by a build, with the encoder's files hard-linked, not copied. A full
    build is due when the settings or the format differ, or when the entries changed
    since the last full build would exceed `settings.incremental_max_fraction`.
    """
    folder = Path(folder)
    started = time.perf_counter()
    meta = read_meta(folder)
    built_with = settings_from_dict(meta["settings"])
    if replace(built_with, incremental_max_fraction=settings.incremental_max_fraction) != settings:
        return None
    changes = diff_entries(meta, entries)
    pending = int(meta.get("changed_since_build", 0)) + changes.count
    if pending > settings.incremental_max_fraction * max(len(entries), 1):
        return None
    index = FaqIndex.load(folder, encoder_factory=encoder_factory, meta=meta)
    slots = list(meta["entries"])
    slot_of = {raw["id"]: slot for slot, raw in enumerate(slots)}
    deleted = set(meta.get("deleted_slots", []))
    removed = set(meta.get("removed_phrasings", []))
    owners = list(meta["owners"])
    phrasings_of_slot: dict[int, list[int]] = {}
    for pid, owner in enumerate(owners):
        phrasings_of_slot.setdefault(owner, []).append(pid)

    for entry_id in changes.removed + [e.id for e in changes.changed]:
        slot = slot_of[entry_id]
        removed.update(phrasings_of_slot.get(slot, []))
        if entry_id in changes.removed:
            deleted.add(slot)
    touched: list[tuple[int, Entry]] = []
    for entry in changes.changed:
        slots[slot_of[entry.id]] = asdict(entry)
        touched.append((slot_of[entry.id], entry))
    for entry in changes.added:
        if entry.id in slot_of:  # an entry removed earlier comes back: reuse its slot
            slot = slot_of[entry.id]
            deleted.discard(slot)
            removed.update(phrasings_of_slot.get(slot, []))
            slots[slot] = asdict(entry)
        else:
            slot = len(slots)
            slots.append(asdict(entry))
            slot_of[entry.id] = slot
        touched.append((slot, entry))

    centroids = np.vstack([index._centroids, np.zeros((len(slots) - len(index._centroids), index._centroids.shape[1]), dtype=np.float32)])
    texts = [t for _, e in touched for t in phrasings_of(e, settings)]
    if texts:
        vectors = np.ascontiguousarray(index.encoder.encode(texts), dtype=np.float32)
        start = 0
        for slot, entry in touched:
            count = len(phrasings_of(entry, settings))
            part = vectors[start : start + count]
            start += count
            owners.extend([slot] * count)
            mean = part.mean(axis=0)
            centroids[slot] = mean / max(float(np.linalg.norm(mean)), 1e-12)
        index._index.add(vectors)
    for slot in deleted:
        centroids[slot] = 0.0

    live = len(owners) - len(removed)
    meta = dict(
        meta,
        hash=content_hash(entries, settings),
        entries=slots,
        owners=owners,
        deleted_slots=sorted(deleted),
        removed_phrasings=sorted(removed),
        phrasings=live,
        changed_since_build=pending,
        update_seconds=round(time.perf_counter() - started, 3),
    )
    encoder_folder = folder / "encoder"
    write_folder(
        folder, index._index, centroids, lambda: meta,
        (lambda temp: link_tree(encoder_folder, temp)) if encoder_folder.is_dir() else None,
    )
    return FaqIndex(meta, index._index, centroids, index.encoder, settings)


def link_tree(source: Path, target: Path) -> None:
    """Recreate `source` under `target` with hard links (copies where links fail)."""
    for path in source.rglob("*"):
        dest = target / path.relative_to(source)
        if path.is_dir():
            dest.mkdir(parents=True, exist_ok=True)
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, dest)
        except OSError:
            shutil.copy2(path, dest)


def read_meta(folder: Path) -> dict:
    """The metadata of a built index folder; raises `IndexFolderError` if it is unusable."""
    path = folder / "meta.json"
    if not path.is_file():
        raise IndexFolderError(f"{folder}: not a built index (no meta.json); run `python -m kb_index build`")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise IndexFolderError(f"{folder}: unreadable meta.json ({err}); rebuild it") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise IndexFolderError(f"{folder}: index format {found}, expected {FORMAT_VERSION}; rebuild it")
    return meta


def encode_in_batches(encoder: Encoder, texts: Sequence[str], desc: str, batch: int = 512) -> np.ndarray:
    """Encode many texts with a progress bar; rows are L2-normalised float32."""
    parts = []
    with progress_bar(len(texts), desc) as bar:
        for start in range(0, len(texts), batch):
            chunk = texts[start : start + batch]
            parts.append(encoder.encode(chunk))
            bar.update(len(chunk))
    return np.ascontiguousarray(np.vstack(parts), dtype=np.float32)


def entry_centroids(vectors: np.ndarray, owners: np.ndarray, count: int) -> np.ndarray:
    """L2-normalised mean vector of each entry's phrasings."""
    sums = np.zeros((count, vectors.shape[1]), dtype=np.float64)
    np.add.at(sums, owners, vectors)
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return (sums / np.maximum(norms, 1e-12)).astype(np.float32)


def make_faiss_index(vectors: np.ndarray, settings: IndexSettings):
    """Exact inner-product index up to `exact_max_phrasings`, HNSW above it."""
    import faiss

    dim = vectors.shape[1]
    if len(vectors) <= settings.exact_max_phrasings:
        index = faiss.IndexFlatIP(dim)
    else:
        index = faiss.IndexHNSWFlat(dim, settings.hnsw_neighbours, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = settings.hnsw_ef_construction
    index.add(vectors)
    return index


def margins(scores: np.ndarray) -> np.ndarray:
    """Each entry's score minus the best score among the other entries (0 for a lone entry)."""
    if len(scores) < 2:
        return np.zeros_like(scores)
    order = np.argsort(-scores, kind="stable")
    best, second = scores[order[0]], scores[order[1]]
    others = np.where(np.arange(len(scores)) == order[0], second, best)
    return scores - others


def confidence(scores: np.ndarray, settings: IndexSettings, adapted: bool) -> np.ndarray:
    """The calibrated probability that each entry is the right answer (see IndexSettings)."""
    bias, w_similarity, w_margin = settings.confidence_adapted if adapted else settings.confidence_unadapted
    z = bias + w_similarity * scores + w_margin * margins(scores)
    return 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))


class FaqIndex:
    """A loaded index: answers `search(query)` with the best entry or an abstention."""

    def __init__(self, meta: dict, index, centroids: np.ndarray, encoder: Encoder, settings: IndexSettings) -> None:
        self.meta = meta
        self.settings = settings
        self._slots = [Entry(**raw) for raw in meta["entries"]]
        deleted = set(meta.get("deleted_slots", []))
        self.entries = [e for slot, e in enumerate(self._slots) if slot not in deleted]
        self._owners = np.asarray(meta["owners"], dtype=np.int64)
        if meta.get("removed_phrasings"):  # tombstoned by an in-place update: never returned
            self._owners = self._owners.copy()
            self._owners[np.asarray(meta["removed_phrasings"], dtype=np.int64)] = -1
        self._index = index
        self._centroids = centroids
        self.encoder = encoder
        if hasattr(index, "hnsw"):
            index.hnsw.efSearch = settings.hnsw_ef_search

    @classmethod
    def load(
        cls,
        folder: str | Path,
        encoder: Encoder | None = None,
        encoder_factory: EncoderFactory = default_encoder,
        meta: dict | None = None,
    ) -> "FaqIndex":
        """Load a built index; the encoder itself loads on the first search.

        Pass `encoder` only for an index built without fine-tuning (`meta["adapted"]` is
        false); otherwise the fine-tuned weights in the folder are used via `encoder_factory`.
        `meta` is the folder's metadata when the caller has just read it (`read_meta`).
        """
        import faiss

        folder = Path(folder)
        if meta is None:
            meta = read_meta(folder)
        settings = settings_from_dict(meta["settings"])
        try:
            index = faiss.read_index(str(folder / "phrasings.faiss"))
            centroids = np.load(folder / "centroids.npy")
        except (OSError, RuntimeError) as err:
            raise IndexFolderError(f"{folder}: incomplete index ({err}); rebuild it") from None
        if meta["adapted"]:
            if encoder is not None:
                raise ValueError(f"{folder} was built with a fine-tuned encoder; load it without `encoder=`")
            encoder = encoder_factory(folder / "encoder")
        elif encoder is None:
            encoder = encoder_factory(None)
        return cls(meta, index, centroids, encoder, settings)

    def __len__(self) -> int:
        return len(self.entries)

    def search(self, query: str, k: int = 3) -> SearchResult:
        """Best entry for `query` (None below the threshold) and the top-k candidates."""
        return self.search_many([query], k)[0]

    def search_many(self, queries: Sequence[str], k: int = 3) -> list[SearchResult]:
        """`search` for many queries, encoded in one batch."""
        if not queries:
            return []
        vectors = self.encoder.encode(list(queries))
        ranked = self.rank(vectors, k)
        results = []
        for query, hits in zip(queries, ranked):
            best = hits[0] if hits and hits[0].score >= self.settings.threshold else None
            results.append(SearchResult(query=query, answer=best, candidates=hits))
        return results

    def rank(self, vectors: np.ndarray, k: int) -> list[list[Hit]]:
        """Top-k entries for each query vector, scored and calibrated."""
        settings = self.settings
        fetch = min(max(settings.retrieve, k), self._index.ntotal)
        sims, ids = self._index.search(np.ascontiguousarray(vectors, dtype=np.float32), fetch)
        w = settings.centroid_weight
        results = []
        for row, query in enumerate(vectors):
            best: dict[int, float] = {}
            for sim, pid in zip(sims[row], ids[row]):
                if pid < 0:
                    continue
                owner = int(self._owners[pid])
                if owner < 0:
                    continue
                if owner not in best:  # faiss returns phrasings best first
                    best[owner] = float(sim)
            if not best:
                results.append([])
                continue
            owners = np.fromiter(best, dtype=np.int64)
            nearest = np.fromiter(best.values(), dtype=np.float64)
            central = self._centroids[owners] @ query
            scores = w * central + (1.0 - w) * nearest
            sure = confidence(scores, settings, self.meta["adapted"])
            order = np.argsort(-scores, kind="stable")[:k]
            results.append(
                [
                    Hit(
                        entry_id=self._slots[owners[i]].id,
                        title=self._slots[owners[i]].title,
                        score=round(float(sure[i]), 6),
                        similarity=round(float(scores[i]), 6),
                    )
                    for i in order
                ]
            )
        return results


def settings_from_dict(raw: dict) -> IndexSettings:
    """Rebuild `IndexSettings` from its `asdict` form (as stored in meta.json)."""
    raw = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items() if k in IndexSettings.__dataclass_fields__}
    adapt = raw.pop("adapt", None)
    return IndexSettings(adapt=AdaptSettings(**adapt) if adapt is not None else None, **raw)
