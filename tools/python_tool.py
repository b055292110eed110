"""The ``python`` tool: model-written code, run in the sandbox, priced per second."""

from __future__ import annotations

import asyncio

from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field

from .config import PythonConfig
from .cost import ToolCost, Usage, with_cost
from .pricing import Prices
from .sandbox import SandboxLimits, observation, run_python

NO_CODE = "Error: no code given: put the Python to run in `code`."
KILL_GRACE_S = 2.0  # time the sandbox may take to tear a timed-out process tree down
DESCRIPTION = (
    "Run Python 3 code in an isolated sandbox (no network, no files kept) and return its "
    "output. Use it for arithmetic, exact calculation, data manipulation and checking code. "
    "The value of the last expression is shown, as in a notebook; print anything else."
)


class PythonArgs(BaseModel):
    """Arguments of the python tool."""

    # No sample program here: small policies copied one's literal result into unrelated answers.
    code: str = Field(
        description="Complete Python source that computes what the task needs and prints it."
    )


def python_tool(cfg: PythonConfig, prices: Prices) -> BaseTool:
    """Build the sandboxed ``python`` tool with the limits of ``cfg``."""
    limits = SandboxLimits(
        timeout_s=cfg.timeout_s, cpu_s=max(1, int(cfg.timeout_s)), memory_mb=cfg.memory_mb
    )

    def run(code: str) -> tuple[str, Usage]:
        if not code.strip():  # ran nothing, so it failed: a blank cell is no successful call
            return NO_CODE, Usage(compute_seconds=0.0, error="no code given")
        result = run_python(code, limits)
        usage = Usage(compute_seconds=result.seconds)
        if not result.ok:
            usage["error"] = result.error or f"exit code {result.exit_code}"
        return observation(result), usage

    async def arun(code: str) -> tuple[str, Usage]:
        return await asyncio.to_thread(run, code)

    tool = StructuredTool.from_function(
        func=run,
        coroutine=arun,
        name="python",
        description=DESCRIPTION,
        args_schema=PythonArgs,
        response_format="content_and_artifact",
    )
    cost = ToolCost(
        per_second_usd=prices.number("compute", "per_second"),
        expected_latency_s=0.3,
        max_seconds=cfg.timeout_s + KILL_GRACE_S,
        locality="local",
        capability="exact computation and code execution",
        price_source="table:compute.per_second",
    )
    return with_cost(tool, cost)
