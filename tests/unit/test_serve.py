"""``podium serve``'s command line, checks and failure paths (fast; vLLM itself: test_vllm.py)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from podium.studio.servers import (
    ServeError,
    ServeSpec,
    check_port_free,
    parse_loras,
    vllm_command,
    vllm_env,
    vllm_python,
)

PY = Path("/opt/vllm/bin/python")


def adapter(tmp_path: Path, name: str, r: int) -> Path:
    path = tmp_path / name
    path.mkdir()
    (path / "adapter_config.json").write_text(json.dumps({"r": r}))
    return path


def podium(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "podium.studio.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)


def test_command_has_tool_calling_lora_and_cpu_flags(tmp_path):
    loras = parse_loras([f"a={adapter(tmp_path, 'a', 8)}", f"b={adapter(tmp_path, 'b', 12)}"])
    spec = ServeSpec(model="/m", served_model_name="pol", loras=loras, port=8123)
    cmd = vllm_command(spec, PY, gpu=False)
    assert cmd[:3] == [str(PY), "-m", "vllm.entrypoints.openai.api_server"]
    text = " ".join(cmd)
    assert "--enable-auto-tool-choice --tool-call-parser hermes" in text
    assert "--served-model-name pol --host 127.0.0.1 --port 8123" in text
    assert "--enable-lora --max-lora-rank 16 --max-loras 2" in text  # 12 rounds up to 16
    assert f"--lora-modules a={tmp_path / 'a'} b={tmp_path / 'b'}" in text
    assert "--enforce-eager --dtype float32" in text
    assert "--enforce-eager" not in vllm_command(spec, PY, gpu=True)


def test_parallel_sizes_reach_vllm_only_above_one():
    spec = ServeSpec(model="/m", tensor_parallel_size=2, data_parallel_size=4)
    text = " ".join(vllm_command(spec, PY, gpu=True))
    assert "--tensor-parallel-size 2" in text and "--data-parallel-size 4" in text
    assert "parallel-size" not in " ".join(vllm_command(ServeSpec(model="/m"), PY, gpu=True))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "/m", "--tensor-parallel-size", "0"], "--tensor-parallel-size 0: choose 1"),
        (["--engine", "llamacpp", "--data-parallel-size", "2"], "for --engine vllm only"),
    ],
)
def test_bad_parallel_sizes_are_one_line_errors(args, message):
    done = podium("serve", *args)
    assert done.returncode == 2 and message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_passthrough_flags_win_over_cpu_defaults():
    spec = ServeSpec(model="/m", extra=["--dtype=bfloat16", "--max-model-len", "2048"])
    cmd = vllm_command(spec, PY, gpu=False)
    assert "float32" not in cmd and cmd[-3:] == ["--dtype=bfloat16", "--max-model-len", "2048"]
    assert "--enable-lora" not in cmd


def test_env_is_offline_without_foreign_api_keys(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    monkeypatch.setenv("VLLM_API_KEY", "vllm-token")
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "4")
    env = vllm_env(gpu=False)
    assert "OPENAI_API_KEY" not in env and env["VLLM_API_KEY"] == "vllm-token"
    assert env["HF_HUB_OFFLINE"] == "1" and env["VLLM_NO_USAGE_STATS"] == "1"
    assert env["DO_NOT_TRACK"] == "1" and env["VLLM_CPU_KVCACHE_SPACE"] == "4"


@pytest.mark.parametrize("value", ["noequals", "=path", "name="])
def test_bad_lora_values_are_one_line_errors(value):
    with pytest.raises(ServeError, match="NAME=PATH"):
        parse_loras([value])


def test_lora_dir_without_adapter_config(tmp_path):
    with pytest.raises(ServeError, match=r"adapter_config\.json"):
        parse_loras([f"x={tmp_path}"])


def test_busy_port_names_the_port():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with pytest.raises(ServeError, match=f"port {port} on 127.0.0.1 is already in use"):
            check_port_free("127.0.0.1", port)
    check_port_free("127.0.0.1", port)  # free again once closed


def test_missing_vllm_python_names_make_install_vllm(monkeypatch, tmp_path):
    monkeypatch.setenv("PODIUM_VLLM_PYTHON", str(tmp_path / "nope" / "python"))
    with pytest.raises(ServeError, match="make install-vllm"):
        vllm_python()


def _env(tmp_path: Path, python: str) -> dict[str, str]:
    return {**os.environ, "PODIUM_VLLM_PYTHON": python, "PODIUM_CACHE_DIR": str(tmp_path)}


def test_cli_busy_port_exits_2_before_starting_anything(tmp_path):
    marker = tmp_path / "started"
    fake = tmp_path / "python"
    fake.write_text(f"#!/bin/sh\ntouch {marker}\n")
    fake.chmod(0o755)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = str(listener.getsockname()[1])
        args = ["serve", "--model", str(tmp_path), "--port", port]
        done = podium(*args, env=_env(tmp_path, str(fake)))
        llama = podium("serve", "--engine", "llamacpp", "--port", port, env=_env(tmp_path, ""))
    for result in (done, llama):
        assert result.returncode == 2
        assert result.stderr == (
            f"podium: error: port {port} on 127.0.0.1 is already in use: "
            "stop what listens there or pass --port\n"
        )
    assert not marker.exists()


def test_cli_server_dying_at_start_reports_its_log(tmp_path):
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho 'INFO loading'\necho 'RuntimeError: no CPU backend'\nexit 3\n")
    fake.chmod(0o755)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    done = podium("serve", "--model", str(tmp_path), "--port", port, env=_env(tmp_path, str(fake)))
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("podium: error: vLLM exited with code 3 while starting")
    assert "RuntimeError: no CPU backend" in last
    assert "INFO loading" in done.stderr  # the log's tail is shown above the error line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--engine", "tgi"], "--engine 'tgi': choose vllm or llamacpp"),
        (["--engine", "vllm"], "--engine vllm needs --model DIR"),
        (["--engine", "llamacpp", "--model", "m"], "for --engine vllm only"),
        (["--engine", "llamacpp", "--lora", "a=b"], "applies one GGUF LoRA, to the policy"),
        (["--engine", "llamacpp", "--lora", "/no/such.gguf"], "/no/such.gguf does not exist"),
        (["--model", "/no/such/dir"], "--model /no/such/dir: no such directory"),
    ],
)
def test_cli_user_mistakes_are_one_line(tmp_path, args, message):
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    done = podium("serve", *args, env=_env(tmp_path, str(fake)))
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert message in done.stderr


def _start_fake_server(tmp_path: Path, processes) -> tuple[subprocess.Popen[str], list[int]]:
    """``podium serve`` of a fake vLLM that never answers; returns [its child, itself]."""
    pids = tmp_path / "pids"
    fake = tmp_path / "python"
    script = f"sleep 600 &\necho $! >> {pids}\necho $$ >> {pids}\nexec sleep 600\n"
    fake.write_text("#!/bin/sh\n" + script)
    fake.chmod(0o755)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    command = [sys.executable, "-m", "podium.studio.cli", "serve", "--model", str(tmp_path)]
    proc = subprocess.Popen(
        [*command, "--port", port],
        env=_env(tmp_path, str(fake)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not (pids.exists() and len(pids.read_text().split()) == 2):
        assert time.monotonic() < deadline and proc.poll() is None, proc.stderr
        time.sleep(0.1)
    found = [int(p) for p in pids.read_text().split()]
    assert all(processes.alive(p) for p in found) and os.getpgid(found[1]) == found[1]  # own group
    return proc, found


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stop_signal_stops_the_server_and_its_whole_group(tmp_path, sig, processes):
    proc, pids = _start_fake_server(tmp_path, processes)
    proc.send_signal(sig)
    assert proc.wait(60) == 0
    assert processes.gone(pids)


def test_server_is_stopped_even_when_podium_serve_is_killed(tmp_path, processes):
    proc, (child, server) = _start_fake_server(tmp_path, processes)
    proc.send_signal(signal.SIGKILL)
    proc.wait(60)
    try:
        assert processes.gone([server])  # the kernel sends it SIGTERM (PR_SET_PDEATHSIG)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)  # the fake's own child; real vLLM stops its own
