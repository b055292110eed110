"""Bad input sweep: every mistake gets one line on stderr, exit code 2 and no traceback.

The cases of tests/unit/test_cli.py are not repeated. Each case is its own process with its own
stdout, stderr and exit code. Usage errors (and one long question) run as real
``python -m podium.studio.cli`` commands; the others run ``main()`` in a child forked from
one interpreter that has done podium's imports once, because a fresh interpreter spends
~3.5 s on imports before it reaches the mistake (~80 s of CPU for this sweep). The fork also
carries what no command line can: the kernel refuses any single argument over 128 KiB.

Not covered: a config file without read permission. The tests run as root, which reads any
file whatever its mode, and the interpreter lives under /root, so a child cannot drop to
another user either; an unreadable file takes the same ``cannot read config file`` branch
as the directory and non-UTF-8 cases below.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from podium.graph.context import MAX_TEXT_CHARS

PODIUM = [sys.executable, "-m", "podium.studio.cli"]
# argv[1]: JSON [[case, argv, env], ...]; argv[2]: a directory for the children's output.
# Prints {case: [exit code, stdout, stderr]}.
FORK_DRIVER = r"""
import contextlib, io, json, os, sys, traceback
import podium.graph, podium.tools  # the imports every case would repeat
from podium.studio.cli import main

cases, out_dir, results = json.load(open(sys.argv[1])), sys.argv[2], {}
with contextlib.redirect_stderr(io.StringIO()), contextlib.suppress(SystemExit):
    sys.argv = ["podium", "run", "hi", "--max-turns", "0"]
    main()  # a warm-up, output dropped: the children skip the first call's lazy set-up
for i, (case, argv, env) in enumerate(cases):
    paths = [os.path.join(out_dir, f"{i}.{name}") for name in ("out", "err")]
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:  # the child: the same as `podium ARGV` after its imports
        code = 1
        try:
            for stream, path in zip((1, 2), paths):
                os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), stream)
            os.environ.clear()
            os.environ.update(env)
            sys.argv = ["podium", *argv]
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    results[case] = [os.waitstatus_to_exitcode(status), *(open(p).read() for p in paths)]
print(json.dumps(results))
"""
OVER = "x" * (MAX_TEXT_CHARS + 20_000)  # over podium's limit, under the kernel's

NEGATIVE_X = {"prices": {"models": {"x": {"input": -1.0, "output": 1.0}}}}
EXPERT_X = {"model": "x", "base_url": "http://127.0.0.1:8001/v1", "price": "x", "capability": "x"}
CONFIGS: dict[str, dict[str, Any]] = {
    "notlist.toml": {"profiles": {"bad": {"tools": "python"}}},
    "negexpert.toml": {
        **NEGATIVE_X,
        "profiles": {"px": {"tools": ["ask_x"]}},
        "experts": {"ask_x": EXPERT_X},
    },
    "negpolicy.toml": {"policy": {"price": "x"}} | NEGATIVE_X,
    "nanprice.toml": {
        "policy": {"price": "x"},
        "prices": {"models": {"x": {"input": float("nan"), "output": 1.0}}},
    },
    "negcompute.toml": {"prices": {"compute": {"per_second": -0.1}}},
    "pyinf.toml": {"python": {"timeout_s": float("inf")}},
    "tempinf.toml": {"policy": {"temperature": float("inf")}},
    "nobase.toml": {"experts": {"ask_x": {"model": "x", "price": "qwen3-8b", "capability": "x"}}},
}

# case -> (argv, extra environment, text the one line must contain, as a real command?)
CASES: dict[str, tuple[list[str], dict[str, str], str, bool]] = {
    "profile tools not a list": (
        ["tools", "--config", "{d}/notlist.toml"],
        {},
        "profiles.bad.tools: Input should be a valid list",
        False,
    ),
    "negative expert price": (
        ["run", "hi", "--profile", "px", "--config", "{d}/negexpert.toml"],
        {},
        "price entry 'x' needs 'input' and 'output'",
        False,
    ),
    "negative policy price": (
        ["run", "hi", "--config", "{d}/negpolicy.toml", "--budget-usd", "0", "--json"],
        {},
        "finite and >= 0, got {'input': -1.0",
        False,
    ),
    "nan policy price": (
        ["run", "hi", "--config", "{d}/nanprice.toml", "--json"],
        {},
        "finite and >= 0, got {'input': nan",
        False,
    ),
    "negative compute price": (
        ["tools", "--config", "{d}/negcompute.toml"],
        {},
        "price compute.per_second must be finite and >= 0",
        False,
    ),
    "expert without base_url": (
        ["tools", "--config", "{d}/nobase.toml"],
        {},
        "experts.ask_x.base_url: Field required",
        False,
    ),
    "config is a directory": (
        ["run", "hi", "--config", "{d}"],
        {},
        "cannot read config file",
        False,
    ),
    "config is not UTF-8": (["tools", "--config", "{d}/binary.toml"], {}, "cannot read", False),
    "budget abc": (["run", "hi", "--budget-usd", "abc"], {}, "'--budget-usd'", True),
    "budget nan": (["run", "hi", "--budget-usd", "nan"], {}, "got nan", False),
    "budget inf": (["run", "hi", "--budget-usd", "inf"], {}, "got inf", False),
    "budget 1e400": (["run", "hi", "--budget-usd", "1e400"], {}, "got inf", False),
    "max turns -3": (["run", "hi", "--max-turns", "-3"], {}, "max_turns must be", False),
    "env budget abc": (
        ["run", "hi"],
        {"PODIUM_BUDGET_USD": "abc"},
        "$PODIUM_BUDGET_USD='abc' is not a valid budget_usd: fix or unset",
        False,
    ),
    "preference 120k chars": (
        ["run", "hi", "--preference", OVER],
        {},
        "the preference is 120,000 characters",
        False,
    ),
    "preference 1 MB": (
        ["run", "hi", "--preference", "p" * 1_000_000],
        {},
        "the preference is 1,000,000 characters",
        False,
    ),
    "env preference 120k chars": (
        ["run", "hi"],
        {"PODIUM_PREFERENCE": OVER},
        "$PODIUM_PREFERENCE",
        False,
    ),
    "question 120k chars": (["run", OVER], {}, "the question is 120,000 characters", True),
    "question 2 MB": (["run", "q" * 2_000_000], {}, "the question is 2,000,000", False),
    "unknown subcommand": (["frobnicate"], {}, "No such command 'frobnicate'", True),
    "unknown server subcommand": (["server", "nope"], {}, "No such command 'nope'", True),
    "missing question": (["run"], {}, "the question is empty", True),
    "resume a thread that never ran": (["run", "--thread", "nope"], {}, "question is empty", True),
    "approve with nothing pending": (
        ["run", "hi", "--thread", "t", "--approve"],
        {},
        "waits for no approval: drop --approve/--reject",
        True,
    ),
    "approve threshold not a number": (
        ["run", "hi", "--approve-above-usd", "nan"],
        {},
        "approve_above_usd must be a number",
        True,
    ),
    "reject with nothing pending": (
        ["run", "hi", "--thread", "t3", "--reject"],
        {},
        "waits for no approval: drop --approve/--reject",
        False,
    ),
    "unknown suite": (
        ["eval", "nope", "--out", "{d}/eval-nope"],
        {},
        "unknown suite 'nope': use one of",
        False,
    ),
    "missing jsonl suite file": (
        ["eval", "jsonl:{d}/missing.jsonl", "--out", "{d}/eval-missing"],
        {},
        "missing.jsonl: no such file",
        False,
    ),
    "unknown router": (
        ["eval", "math", "--router", "nope", "--limit", "1", "--out", "{d}/eval-router"],
        {},
        "unknown router 'nope': use one of",
        False,
    ),
    "eval limit -1": (
        ["eval", "math", "--limit", "-1", "--out", "{d}/eval-limit"],
        {},
        "--limit must be at least 1, got -1",
        False,
    ),
    "eval prefers an unknown tool": (
        ["eval", "math", "--prefer", "nope", "--limit", "1", "--out", "{d}/eval-prefer"],
        {},
        "--prefer 'nope' is not a tool of the pool: use one of",
        False,
    ),
    "tau2 with a fixed router": (
        ["eval", "tau2", "--router", "cheapest", "--limit", "1", "--out", "{d}/eval-tau2"],
        {"PODIUM_USER_SIM_BASE_URL": "http://127.0.0.1:9/v1"},
        "router 'cheapest' cannot hold a tau2 conversation",
        False,
    ),
    "tau2 max turns not a number": (
        ["eval", "tau2", "--limit", "1", "--out", "{d}/eval-tau2-turns"],
        {"PODIUM_USER_SIM_BASE_URL": "http://127.0.0.1:9/v1", "PODIUM_USER_SIM_MAX_TURNS": "x"},
        "$PODIUM_USER_SIM_MAX_TURNS='x' is not a whole number >= 1",
        False,
    ),
    "unknown domain": (
        ["synth", "env", "--domain", "nope"],
        {},
        "unknown domain 'nope': choose one of",
        False,
    ),
    "view an unknown trajectory": (["view", "nope"], {}, "no trajectory 'nope'", False),
    "env local only maybe": (
        ["run", "hi"],
        {"PODIUM_LOCAL_ONLY": "maybe"},
        "$PODIUM_LOCAL_ONLY='maybe' is not a valid local_only: fix or unset",
        False,
    ),
    "env temperature nan": (
        ["run", "hi"],
        {"PODIUM_TEMPERATURE": "nan"},
        "$PODIUM_TEMPERATURE='nan' is not a valid temperature",
        False,
    ),
    "env temperature inf": (
        ["run", "hi"],
        {"PODIUM_TEMPERATURE": "inf"},
        "temperature must be a finite number",
        False,
    ),
    "python timeout inf": (
        ["run", "hi", "--config", "{d}/pyinf.toml"],
        {},
        "python.timeout_s: Input should be a finite number",
        False,
    ),
    "policy temperature inf": (
        ["run", "hi", "--config", "{d}/tempinf.toml"],
        {},
        "policy.temperature: Input should be a finite number",
        False,
    ),
    "question not UTF-8": (
        ["run", "caf\udcff"],
        {},
        "the question is not valid UTF-8 (a bad byte at character 3)",
        True,
    ),
    "cache dir is /dev/null": (
        ["run", "hi"],
        {"PODIUM_CACHE_DIR": "/dev/null", "PODIUM_CHECKPOINT_DB": ""},
        "cache directory /dev/null cannot be created",
        False,
    ),
    "checkpoint file is a directory": (
        ["run", "hi"],
        {"PODIUM_CHECKPOINT_DB": "{d}"},
        "is a directory: move it aside",
        False,
    ),
    "checkpoint file is corrupt": (
        ["run", "hi"],
        {"PODIUM_CHECKPOINT_DB": "{d}/corrupt.sqlite"},
        "corrupt.sqlite cannot be used (file is not a database): move it aside",
        False,
    ),
    "trajectory store is a directory": (
        ["view", "--latest", "--db", "{d}", "--no-open"],
        {},
        "is a directory: move it aside or use another file",
        False,
    ),
    "collect into a directory": (
        ["collect", "--tasks", "math", "--out", "{d}", "--limit", "1"],
        {},
        "is a directory: move it aside or use another file",
        False,
    ),
    "eval out is a file": (
        ["eval", "math", "--out", "{d}/empty.toml", "--limit", "1"],
        {},
        "empty.toml is a file: pass a directory",
        False,
    ),
    "serve on a host that is no address": (
        ["serve", "--engine", "llamacpp", "--host", "999.1.1.1"],
        {},
        "--host '999.1.1.1' is not a valid IP address or host name",
        False,
    ),
    "train config is a directory": (
        ["train", "--config", "{d}"],
        {},
        "is a directory: pass the TOML file in it",
        False,
    ),
    "unknown option": (["run", "hi", "--bogus"], {}, "No such option: --bogus", True),
    "extra argument": (["tools", "--json", "x"], {}, "unexpected extra argument", True),
}


def base_env(tmp) -> dict[str, str]:
    """The caller's environment with podium's settings pinned to test files.

    The policy endpoint is a closed port: a case that wrongly got as far as a model call
    fails fast instead of starting the embedded server.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("PODIUM_")}
    return env | {
        "PODIUM_CONFIG": str(tmp / "empty.toml"),
        "PODIUM_POLICY_BASE_URL": "http://127.0.0.1:9/v1",
        "PODIUM_TRAJECTORY_DB": str(tmp / "traj.sqlite"),
        "PODIUM_CHECKPOINT_DB": str(tmp / "checkpoints.sqlite"),
    }


def argv_env(tmp, case: str) -> tuple[list[str], dict[str, str]]:
    """The command-line arguments and the environment of ``case``."""
    args, extra, _, _ = CASES[case]
    extra = {k: v.replace("{d}", str(tmp)) for k, v in extra.items()}
    return [a.replace("{d}", str(tmp)) for a in args], base_env(tmp) | extra


def forked(tmp) -> dict[str, subprocess.CompletedProcess[str]]:
    """Run the forked cases through FORK_DRIVER."""
    cases = [[case, *argv_env(tmp, case)] for case, spec in CASES.items() if not spec[3]]
    (tmp / "cases.json").write_text(json.dumps(cases))
    (tmp / "out").mkdir()
    argv = [sys.executable, "-c", FORK_DRIVER, str(tmp / "cases.json"), str(tmp / "out")]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return {
        case: subprocess.CompletedProcess(argv, code, out, err)
        for case, (code, out, err) in json.loads(done.stdout).items()
    }


def executed(tmp, case: str) -> subprocess.CompletedProcess[str]:
    """Run ``case`` as a real ``python -m podium.studio.cli`` command."""
    args, env = argv_env(tmp, case)
    return subprocess.run([*PODIUM, *args], capture_output=True, text=True, timeout=120, env=env)


POLICY_DOWN = "policy endpoint down"


def policy_down(tmp) -> subprocess.CompletedProcess[str]:
    """A run whose policy endpoint is a closed port: not a user error, exit code 1."""
    argv = [*PODIUM, "run", "hi", "--json", "--max-turns", "1"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, env=base_env(tmp))


@pytest.fixture(scope="module")
def runs(tmp_path_factory, write_config):
    """Every case, run once: case -> its finished process."""
    tmp = tmp_path_factory.mktemp("bad-input")
    for name, config in CONFIGS.items():
        write_config(tmp / name, config)
    write_config(tmp / "empty.toml", {})
    (tmp / "binary.toml").write_bytes(b"[profiles.x]\ntools = ['\xff\xfe']\n")
    (tmp / "corrupt.sqlite").write_bytes(b"not a database " * 100)
    real = [case for case, spec in CASES.items() if spec[3]]
    with ThreadPoolExecutor(max_workers=4) as pool:
        fork = pool.submit(forked, tmp)
        down = pool.submit(policy_down, tmp)  # mostly waits on the client's retries
        done = dict(zip(real, pool.map(lambda c: executed(tmp, c), real), strict=True))
        return done | fork.result() | {POLICY_DOWN: down.result()}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_and_exit_code_2(runs, case):
    done = runs[case]
    needle = CASES[case][2]
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert len(lines) == 1, done.stderr[-2000:]
    assert lines[0].startswith("podium: error: ") and needle in lines[0], lines[0][:500]
    assert done.stdout == ""
    assert len(lines[0]) < 400  # the message never echoes the oversize input


def test_refused_evals_write_no_output_dir(runs, tmp_path_factory):
    tmp = tmp_path_factory.getbasetemp()
    assert not list(tmp.glob("bad-input*/eval-*"))  # no half-written report


def test_a_2mb_argument_never_reaches_podium():
    """The kernel refuses it (E2BIG), so shells print 'Argument list too long', exit 126."""
    with pytest.raises(OSError) as err:
        subprocess.run([*PODIUM, "run", "q" * 2_000_000], capture_output=True, timeout=60)
    assert err.value.errno == errno.E2BIG


def test_help_still_works():
    for args, code in ((["--help"], 0), (["run", "--help"], 0), ([], 2)):
        done = subprocess.run([*PODIUM, *args], capture_output=True, text=True, timeout=60)
        assert done.returncode == code, done.stderr
        assert "Usage" in done.stdout and "run" in done.stdout and not done.stderr


def test_a_run_whose_policy_is_down_still_exits_1_with_its_json(runs):
    done = runs[POLICY_DOWN]
    assert done.returncode == 1, done.stderr[-2000:]
    assert json.loads(done.stdout)["stopped_by"] == "error"


def test_a_bad_policy_price_fails_before_any_server_starts(tmp_path, monkeypatch, write_config):
    from podium.graph import Context
    from podium.graph.resources import resolve
    from podium.tools import ConfigError, llamacpp

    def no_server() -> str:
        raise AssertionError("the embedded server was started")

    monkeypatch.setattr(llamacpp, "embedded_base_url", no_server)
    monkeypatch.delenv("PODIUM_POLICY_BASE_URL", raising=False)
    config = write_config(tmp_path / "negpolicy.toml", CONFIGS["negpolicy.toml"])
    with pytest.raises(ConfigError, match="finite and >= 0"):
        resolve(Context(config=str(config)))
