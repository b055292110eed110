"""Fixtures shared by the unit and the integration tests, and the rule that splits them.

``tests/unit/`` holds tests that need no model, server or sandbox; ``tests/integration/``
holds the ones marked ``@pytest.mark.integration``. Collection fails when a test sits on the
wrong side, so ``make test-unit`` stays fast and ``-m "not integration"`` means the same.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from langchain_core.language_models import BaseChatModel
from langchain_core.tools import BaseTool
from langchain_core.tracers import LangChainTracer
from langsmith import Client

from podium.graph.resources import policy_override, tools_override
from podium.graph.testing import FakePolicy, calc_tool

os.environ.setdefault("LANGSMITH_TRACING", "false")
os.environ.setdefault("LANGSMITH_TEST_TRACKING", "false")

INTEGRATION_DIR = Path(__file__).parent / "integration"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Refuse a marked test outside ``tests/integration/`` or an unmarked one inside it."""
    misplaced = [
        item.nodeid
        for item in items
        if (item.get_closest_marker("integration") is not None)
        != item.path.is_relative_to(INTEGRATION_DIR)
    ]
    if misplaced:
        raise pytest.UsageError(
            "integration tests belong in tests/integration/ and only they do; move or "
            f"(un)mark: {', '.join(misplaced[:5])}"
        )


FakeGraph = Callable[..., tuple[Any, dict[str, Any]]]


@pytest.fixture
def fake_graph(tmp_path: Path) -> Iterator[FakeGraph]:
    """The graph's policy and tool pool replaced for this test, through the public overrides.

    Returns ``setup(policy, tools, **fake_policy_kwargs) -> (policy, context_kwargs)``:
    ``policy`` is a script for a :class:`FakePolicy` (built with the kwargs), a chat model
    used as is, or ``None`` to keep the real client of ``policy_base_url``. Calling
    ``setup`` again replaces the previous fakes. ``context_kwargs`` name an endpoint nothing
    listens on and a trajectory store in ``tmp_path``.
    """
    stack = ExitStack()

    def setup(
        policy: Any, tools: list[BaseTool], **policy_kwargs: Any
    ) -> tuple[Any, dict[str, Any]]:
        stack.close()
        if policy is not None and not isinstance(policy, BaseChatModel):
            policy = FakePolicy(script=list(policy), **policy_kwargs)
        if policy is not None:
            stack.enter_context(policy_override(policy))
        stack.enter_context(tools_override(tools))
        ctx = {
            "policy_base_url": "http://127.0.0.1:9/v1",
            "trajectory_db": str(tmp_path / "traj.sqlite"),
        }
        return policy, ctx

    yield setup
    stack.close()


@pytest.fixture
def calc_pool() -> Iterator[list[BaseTool]]:
    """Every run's pool is the priced ``calc`` tool (what the trainer's runs see too)."""
    tools = [calc_tool()]
    with tools_override(tools):
        yield tools


WriteConfig = Callable[[Path, Mapping[str, Any] | str], Path]


@pytest.fixture(scope="session")
def write_config() -> WriteConfig:
    """``write(path, content) -> path``: a TOML file podium reads (user config, prices, training).

    A mapping is written as TOML by tomli-w, so paths and URLs need no quoting by hand; a
    string is written as it is, for a file meant to be broken. Session-scoped, so module
    fixtures can write theirs too.
    """

    def write(path: Path, content: Mapping[str, Any] | str) -> Path:
        text = content if isinstance(content, str) else tomli_w.dumps(content)
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def train_config(
    tmp_path: Path, write_config: WriteConfig
) -> Callable[[Mapping[str, Any] | str], Any]:
    """``make(toml_body) -> TrainConfig``, loaded from a file as ``podium train`` does."""
    from podium.training.grpo.config import load_train_config

    def make(body: Mapping[str, Any] | str) -> Any:
        return load_train_config(write_config(tmp_path / "train.toml", body))

    return make


class Processes:
    """Liveness of processes by pid, from /proc (a zombie counts as gone)."""

    @staticmethod
    def alive(pid: int) -> bool:
        """Whether ``pid`` runs (and is not a zombie)."""
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return False
        return state != "Z"

    @staticmethod
    def running(marker: str) -> list[int]:
        """Pids whose command line contains ``marker`` (zombies have none, so don't count)."""
        pids = []
        for entry in Path("/proc").iterdir():
            try:
                if entry.name.isdigit() and marker.encode() in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                continue
        return pids

    def gone(self, pids: list[int], within: float = 30.0) -> bool:
        """Whether all ``pids`` end within ``within`` seconds."""
        deadline = time.monotonic() + within
        while any(self.alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        return not any(self.alive(p) for p in pids)


@pytest.fixture
def processes() -> Processes:
    """:class:`Processes`: ``alive(pid)``, ``running(marker)`` and ``gone(pids, within)``."""
    return Processes()


@pytest.fixture
def no_podium_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Context fields, config and prices fall back to $PODIUM_*: keep the developer's out.

    ``PODIUM_CACHE_DIR`` stays: models and indexes are found there.
    """
    for key in list(os.environ):
        if key.startswith("PODIUM_") and key != "PODIUM_CACHE_DIR":
            monkeypatch.delenv(key)


@pytest.fixture
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A podium cache dir of this test's own."""
    path = tmp_path / "cache"
    monkeypatch.setenv("PODIUM_CACHE_DIR", str(path))
    return path


class RecordingClient(Client):
    """A LangSmith client that keeps run payloads instead of sending them."""

    def __init__(self) -> None:
        super().__init__(
            api_url="http://127.0.0.1:9", api_key="offline", info={}, auto_batch_tracing=False
        )
        self.payloads: list[dict[str, Any]] = []

    def create_run(self, *args: Any, **kwargs: Any) -> None:
        self.payloads.append(kwargs)

    def update_run(self, run_id: Any, **kwargs: Any) -> None:
        self.payloads.append({"run_id": run_id, **kwargs})


@pytest.fixture
def langsmith_offline() -> tuple[RecordingClient, LangChainTracer]:
    """A LangSmith tracer whose client records payloads (``client.payloads``), offline."""
    client = RecordingClient()
    return client, LangChainTracer(client=client, project_name="podium-test")


@pytest.fixture(scope="session", autouse=True)
def _stop_the_embedded_server_we_started() -> Iterator[None]:
    """The embedded server outlives its clients by design; a test session cleans up after itself."""
    from podium.tools import load_config
    from podium.tools.llamacpp import EmbeddedServer

    adapter = load_config().policy.adapter or None  # the default policy's own server
    servers = [EmbeddedServer(), EmbeddedServer(adapter=adapter)] if adapter else [EmbeddedServer()]
    running = [server.status() is not None for server in servers]
    yield
    for server, was_running in zip(servers, running, strict=True):
        if not was_running:
            server.stop()


@pytest.fixture(scope="session")
def tiny_policy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Qwen3 policy with a tools chat template, built once per session."""
    from podium.training.grpo.tiny import build_tiny_policy

    return build_tiny_policy(tmp_path_factory.mktemp("tiny") / "policy", seed=0)


@pytest.fixture(scope="session")
def postgres_cluster():
    """A throwaway PostgreSQL server for the session (started on first use, removed after)."""
    from .postgres import Cluster

    cluster = Cluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture
def pg_url(postgres_cluster):
    """The URL of a fresh database on the session's PostgreSQL server."""
    return postgres_cluster.new_database()


@pytest.fixture(params=["sqlite", "postgres"])
def store_at(request, tmp_path):
    """``store_at(name)``: where a store named ``name`` lives, on each backend in turn.

    The same tests run against a SQLite file and a PostgreSQL database (one per test).
    """
    if request.param == "sqlite":
        return lambda name: str(tmp_path / f"{name}.sqlite")
    url = request.getfixturevalue("pg_url")
    return lambda name: url


@pytest.fixture
def judged_runs(fake_graph: FakeGraph) -> Callable[[Path, list[list[Any]]], list[Any]]:
    """``store(path, scripts) -> prompts``: runs of one task ("What is 2+2?", gold "4") through
    the real graph, one per script of the fake policy, judged exactly and stored as
    ``podium collect`` stores them (the data RFT and offline GRPO learn from)."""
    from podium.graph import Context, TrajectoryStore, graph
    from podium.training.eval import suites
    from podium.training.grpo.collect import finish_record
    from podium.training.grpo.preferences import Preference

    def exact(task: suites.Task, answer: str, record: object) -> suites.Verdict:
        ok = answer.strip() == task.gold
        return suites.Verdict(ok, float(ok), "exact")

    def store(path: Path, scripts: list[list[Any]]) -> list[Any]:
        task = suites.Task("q1", "rft-exact", "What is 2+2?", gold="4")
        suites.register_suite("rft-exact", lambda limit=None, seed=0: [task], exact)
        pref = Preference("Be accurate.", {"outcome": 1.0}, "accuracy")
        trajectories = TrajectoryStore(path)
        prompts = []
        for i, script in enumerate(scripts):
            policy, ctx = fake_graph(script, [calc_tool()])
            ctx["trajectory_db"] = str(path)
            state = graph.invoke({"question": task.question}, context=Context(**ctx))
            finish_record(trajectories, state["trajectory_id"], task, "q1@0", i, pref)
            prompts.append(policy.prompts)
        return prompts

    return store
