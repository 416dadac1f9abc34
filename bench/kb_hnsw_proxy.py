"""HNSW settings and resident memory at 100,000 phrasings without encoding 100,000 texts.

    nice -n 10 .venv/bin/python bench/kb_hnsw_proxy.py

For a machine too loaded to run bench/bench_kb.py's 100k row (issue 19): the
Banking77+CLINC150 phrasings and the distractor source texts of bench_kb.py are encoded
for real (~2,600 texts)
the 100k vectors are those mixed pairwise with noise (the 1,362
dev-KB phrasings kept exact). 300 real dev queries measure HNSW recall@1 against exact
search (a tie in similarity counts as found) and faiss search time at several efSearch;
then index folders of the bench's 100k and 10k knowledge bases are written with these
vectors and the RSS of a fresh process holding one plus the encoder is read (memory
does not depend on the vector values).
"""
import random
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
import bench_kb as b  # noqa: E402
import faiss  # noqa: E402
from kb_index import IndexSettings, default_encoder  # noqa: E402
from kb_index.index import FORMAT_VERSION, content_hash, entry_centroids, make_faiss_index, phrasings_of, write_folder  # noqa: E402

t0 = time.time()
entries, queries = b.dev_knowledge()
kb = entries + b.distractors((100_000 - 1362) // 5)
settings = IndexSettings(adapt=None)
groups = [phrasings_of(e, settings) for e in kb]
texts = [t for g in groups for t in g]
owners = np.array([i for i, g in enumerate(groups) for _ in g], dtype=np.int64)
enc = default_encoder()
base_texts = [t for g in groups[:227] for t in g] + b.distractor_sources()
base = enc.encode(base_texts)
print("encoded", len(base_texts), "base texts in", round(time.time() - t0), "s", flush=True)
rng = np.random.default_rng(0)
n = len(texts)
a = rng.integers(0, len(base), n)
c = rng.integers(0, len(base), n)
vec = base[a] + 0.6 * base[c] + rng.normal(0, 0.6 / np.sqrt(base.shape[1]), (n, base.shape[1])).astype(np.float32)
vec[: 1362] = base[:1362]
vec /= np.linalg.norm(vec, axis=1, keepdims=True)
vec = np.ascontiguousarray(vec, dtype=np.float32)
rs = random.Random(7)
qtexts = [q.text for q in rs.sample(queries, 300)]
qv = enc.encode(qtexts)
exact = faiss.IndexFlatIP(vec.shape[1])
exact.add(vec)
es, ei = exact.search(qv, 1)
for M, efc in ((32, 128),):
    t = time.time()
    idx = faiss.IndexHNSWFlat(vec.shape[1], M, faiss.METRIC_INNER_PRODUCT)
    idx.hnsw.efConstruction = efc
    idx.add(vec)
    print(f"M={M} efC={efc}: HNSW build {time.time() - t:.1f} s for {n} vectors", flush=True)
    for efs in (64, 128, 256, 512):
        idx.hnsw.efSearch = efs
        ms = []
        for q in qv:
            s = time.perf_counter()
            idx.search(q[None, :], 64)
            ms.append(1000 * (time.perf_counter() - s))
        s_, i_ = idx.search(qv, 1)
        rec = np.mean((i_[:, 0] == ei[:, 0]) | (s_[:, 0] >= es[:, 0] - 1e-6))
        ms.sort()
        print(f"  efSearch={efs}: recall@1 {rec:.3f}, faiss search (k=64) p50 {ms[len(ms)//2]:.2f} ms p95 {ms[int(0.95*len(ms))]:.2f} ms", flush=True)
# memory: a real index folder (HNSW as built by make_faiss_index with defaults) + base encoder
tmp = Path(tempfile.mkdtemp(prefix="kb-hnsw-proxy-"))
folder = tmp / "idx100k"
index = make_faiss_index(vec, IndexSettings())
cent = entry_centroids(vec, owners, len(kb))
meta = {"format": FORMAT_VERSION, "hash": content_hash(kb, settings), "settings": asdict(settings), "adapted": False,
        "adapt_steps": 0, "phrasings": n, "owners": owners.tolist(), "entries": [asdict(e) for e in kb], "build_seconds": 0}
write_folder(folder, index, cent, lambda: meta, None)
print("RSS 100k:", b.resident_memory(folder), flush=True)
# 10k
k10 = entries + b.distractors((10_000 - 1362) // 5)
g10 = [phrasings_of(e, settings) for e in k10]
n10 = sum(map(len, g10))
o10 = np.array([i for i, g in enumerate(g10) for _ in g], dtype=np.int64)
v10 = vec[:n10].copy()
f10 = tmp / "idx10k"
meta10 = dict(meta, hash="x", phrasings=n10, owners=o10.tolist(), entries=[asdict(e) for e in k10])
write_folder(f10, make_faiss_index(v10, IndexSettings()), entry_centroids(v10, o10, len(k10)), lambda: meta10, None)
print("RSS 10k:", b.resident_memory(f10), flush=True)
print("total", round(time.time() - t0), "s", flush=True)
shutil.rmtree(tmp, ignore_errors=True)
