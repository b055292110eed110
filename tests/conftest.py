from __future__ import annotations

import os

import pytest

os.environ.setdefault("LANGSMITH_TRACING", "false")
os.environ.setdefault("LANGSMITH_TEST_TRACKING", "false")


@pytest.fixture
def fake_graph(monkeypatch, tmp_path):
    """Patch the graph's resources: a scripted policy and the given priced tools.

    Returns ``setup(script, tools) -> (policy, context_kwargs)``.
    """
    from podium.graph import resources

    from .fakes import FakePolicy

    def setup(script, tools, **policy_kwargs):
        policy = FakePolicy(script=list(script), **policy_kwargs)
        monkeypatch.setattr(resources, "_pool", lambda *a, **k: tuple(tools))
        monkeypatch.setattr(resources, "_chat_model", lambda *a, **k: policy)
        ctx = {
            "policy_base_url": "http://127.0.0.1:9/v1",
            "trajectory_db": str(tmp_path / "traj.sqlite"),
        }
        return policy, ctx

    return setup


@pytest.fixture(scope="session", autouse=True)
def _stop_the_embedded_server_we_started():
    """The embedded server outlives its clients by design; a test session cleans up after itself."""
    from podium.tools.llamacpp import EmbeddedServer

    before = EmbeddedServer().status()
    yield
    if before is None:
        EmbeddedServer().stop()


@pytest.fixture(scope="session")
def tiny_policy_dir(tmp_path_factory):
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
