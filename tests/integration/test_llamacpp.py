"""The embedded llama.cpp server (podium.tools.llamacpp) against the real packaged models.

Model files stay in the default cache (assembled once); each test's server state goes to tmp.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from podium.tools import llamacpp
from podium.tools.llamacpp import EmbeddedServer, ServerError

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    """The default model set (policy first), shared by the module's tests."""
    server = EmbeddedServer(state_dir=tmp_path_factory.mktemp("server"), n_ctx=4096)
    server.ensure()
    yield server
    server.stop()


@pytest.fixture
def small(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[EmbeddedServer]:
    """A SmolLM2-only server of this test (quick to start), stopped afterwards."""
    monkeypatch.setenv("HOST", "0.0.0.0")  # must not leak into the server's bind address
    server = EmbeddedServer(state_dir=tmp_path, models=["smollm2"], n_ctx=2048)
    yield server
    server.stop()


def listening(port: int) -> set[str]:
    """Local addresses (hex, as in /proc/net/tcp*) listening on ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.rsplit(":", 1)
            if state == "0A" and int(port_hex, 16) == port:
                found.add(address)
    return found


def test_serves_chat_with_real_usage_on_loopback(server: EmbeddedServer) -> None:
    from langchain_openai import ChatOpenAI

    status = server.status()
    assert status is not None and status["healthy"]
    assert status["url"].startswith("http://127.0.0.1:")
    assert listening(status["port"]) == {"0100007F"}  # 127.0.0.1 only
    model = ChatOpenAI(base_url=status["url"], model="policy", api_key="embedded", max_tokens=32)
    reply = model.invoke("What is 2+2? Answer with the number only.")
    assert "4" in reply.content
    usage = reply.usage_metadata
    assert usage is not None and usage["input_tokens"] > 5 and usage["output_tokens"] > 0
    expert = ChatOpenAI(base_url=status["url"], model="smollm2", api_key="embedded", max_tokens=16)
    assert expert.invoke("Say hello.").usage_metadata["output_tokens"] > 0


def test_second_instance_reuses_the_server(server: EmbeddedServer) -> None:
    before = server.status()
    again = EmbeddedServer(state_dir=server.state_path.parent, n_ctx=2048)
    assert again.ensure() == before["url"]
    assert again.status()["pid"] == before["pid"]


def test_concurrent_ensure_starts_one_server(small: EmbeddedServer, processes) -> None:
    urls: list[str] = []
    twins = [EmbeddedServer(state_dir=small.state_path.parent, models=["smollm2"]) for _ in "ab"]
    threads = [threading.Thread(target=lambda s=s: urls.append(s.ensure())) for s in twins]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(urls) == 2 and urls[0] == urls[1]
    pid = small.status()["pid"]
    assert listening(small.status()["port"]) == {"0100007F"}  # HOST=0.0.0.0 was ignored
    cmdlines = [p.read_bytes() for p in Path("/proc").glob("[0-9]*/cmdline") if p.exists()]
    config = str(small.state_path.with_suffix(".config.json")).encode()
    assert sum(config in line for line in cmdlines) == 1
    assert processes.alive(pid)


def test_stop_kills_the_server_and_removes_its_state(small: EmbeddedServer, processes) -> None:
    small.ensure()
    pid = small.status()["pid"]
    assert small.stop() is True
    assert not processes.alive(pid)
    assert not small.state_path.exists()
    assert small.status() is None
    assert small.stop() is False


def test_the_server_gets_no_keys_in_its_environment(
    small: EmbeddedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = {
        "OPENAI_API_KEY": "sk-server-env-6f1c2a9e",
        "PODIUM_POLICY_API_KEY": "pk-server-env-0d7b44",
        "HF_TOKEN": "hf_server_env_93ab1c",
        "HTTPS_PROXY": "http://user:pw-server-env@127.0.0.1:9",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    small.ensure()
    environ = Path(f"/proc/{small.status()['pid']}/environ").read_bytes().split(b"\0")
    names = {e.split(b"=", 1)[0].decode() for e in environ if e}
    assert "PATH" in names and not names & {*secrets, "HOST"}
    assert not [v for v in secrets.values() if v.encode() in b"".join(environ)]


def test_dead_pid_in_state_is_replaced(small: EmbeddedServer) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    state = {"pid": gone.pid, "host": "127.0.0.1", "port": 9, "models": ["smollm2"], "n_ctx": 2048}
    small.state_path.write_text(json.dumps(state))
    url = small.ensure()
    status = small.status()
    assert status["pid"] != gone.pid and status["alive"] and status["healthy"]
    assert url == status["url"] and status["port"] != 9


def test_server_dying_at_start_reports_its_last_log_line(
    small: EmbeddedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF not really a model")

    class Broken:
        def path(self) -> Path:
            return broken

    monkeypatch.setattr(llamacpp, "get_model", lambda alias: Broken())
    with pytest.raises(ServerError, match=r"exited with code \d+ while starting: .+") as info:
        small.ensure(timeout=60)
    assert "\n" not in str(info.value)
    assert small.status() is None


def test_rejects_a_non_loopback_host() -> None:
    with pytest.raises(ValueError, match="loopback"):
        EmbeddedServer(host="0.0.0.0")


def test_server_contract_the_graph_relies_on(server: EmbeddedServer) -> None:
    from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
    from langchain_core.tools import tool
    from langchain_openai import ChatOpenAI

    @tool
    def python(code: str) -> str:
        """Run Python code and return the value of its last expression."""
        return ""

    url = server.status()["url"]
    policy = ChatOpenAI(
        base_url=url,
        model="policy",
        api_key="embedded",
        temperature=0,
        extra_body={"max_tokens": 48},
    )
    # Only max_tokens in the body limits generation (ChatOpenAI's own sends max_completion_tokens).
    assert policy.invoke("Count from 1 to 50.").usage_metadata["output_tokens"] <= 48
    # A tool_choice naming one function yields real, schema-constrained tool_calls.
    forced = policy.bind_tools([python], tool_choice="python").invoke("What is 1234 * 5678?")
    assert forced.tool_calls and forced.tool_calls[0]["name"] == "python"
    assert "code" in forced.tool_calls[0]["args"]
    # A tool result is accepted when the assistant turn carries non-empty content.
    call = {"name": "python", "args": {"code": "1234 * 5678"}, "id": "call_1"}
    turns = [
        HumanMessage("What is 1234 * 5678? Use the python tool."),
        AIMessage(
            content='{"name": "python", "arguments": {"code": "1234 * 5678"}}', tool_calls=[call]
        ),
        ToolMessage("7006652", tool_call_id="call_1"),
    ]
    assert policy.bind_tools([python]).invoke(turns).usage_metadata["input_tokens"] > 100


RESTART = """
import json, pathlib, sys
from podium.tools import llamacpp

root = pathlib.Path(sys.argv[1])  # the server's files go there; models stay in the shared cache
llamacpp.cache_dir = lambda *parts: root.joinpath(*parts)
url = llamacpp.embedded_base_url()
same = llamacpp.embedded_base_url() == url
default = llamacpp.EmbeddedServer()
first = default.status()["pid"]
try:
    default.stop()
    again = llamacpp.embedded_base_url()
    print(json.dumps([same, again, default.status()["pid"] != first]))
finally:
    default.stop()
"""


def test_embedded_base_url_restarts_a_stopped_server(tmp_path: Path) -> None:
    """In a fresh process, whose remembered default server is its own."""
    done = subprocess.run(
        [sys.executable, "-c", RESTART, str(tmp_path)], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    same, again, restarted = json.loads(done.stdout)
    assert same and again.startswith("http://127.0.0.1:") and restarted
