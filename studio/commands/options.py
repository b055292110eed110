"""The command-line options several commands share, defined once as ``Annotated`` aliases.

Each alias fixes an option's flag, short name and help; the command keeps its own default
(``budget_usd: BudgetUsd = 1.0``), because a single run and an evaluation want different ones.
"""

from __future__ import annotations

from typing import Annotated

import typer

from podium.tools.errors import UserError


class UsageError(UserError, ValueError):
    """A mistake in the command line that Click's own checks miss; one line, exit code 2."""


def given_flags(ctx: typer.Context) -> frozenset[str]:
    """The parameters typed on the command line, as opposed to left at their defaults.

    A flag given explicitly wins over ``$PODIUM_*`` even when its value equals the default
    (``--budget-usd 1`` with ``PODIUM_BUDGET_USD=50`` runs with $1); see ``Context.explicit``.
    """
    return frozenset(
        name
        for name in ctx.params
        if getattr(ctx.get_parameter_source(name), "name", "") == "COMMANDLINE"
    )


Profile = Annotated[str, typer.Option("--profile", "-p", help="Tool-pool profile.")]
ConfigFile = Annotated[str, typer.Option("--config", "-c", help="User config file (TOML).")]
LocalOnly = Annotated[bool, typer.Option("--local-only", help="Offer only local tools.")]
JsonOut = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
BudgetUsd = Annotated[float, typer.Option(help="Hard cap on the dollars a run spends.")]
MaxTurns = Annotated[int, typer.Option(help="Policy turns before a forced answer.")]
Seed = Annotated[
    int, typer.Option("--seed", help="Random seed: the same seed, the same tasks and choices.")
]
Limit = Annotated[int | None, typer.Option(help="At most this many tasks.")]
Concurrency = Annotated[int, typer.Option(help="Runs in flight at once (with --ray: per worker).")]
Ray = Annotated[
    str | None,
    typer.Option(
        "--ray",
        metavar="ADDRESS",
        help="Spread runs over the Ray cluster at ADDRESS (HOST:PORT, or 'local' to start one).",
    ),
]
RayWorkers = Annotated[int, typer.Option(help="With --ray: workers to spread runs over.")]
PolicyBaseUrl = Annotated[
    str,
    typer.Option(
        help="Policy endpoint URL (OpenAI-compatible); several, comma-separated: runs go "
        "to them in turn."
    ),
]
PolicyModel = Annotated[str, typer.Option(help="Model name at the policy endpoint.")]
Host = Annotated[str, typer.Option(help="Address to bind.")]
