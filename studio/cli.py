"""The ``podium`` command line: builds the app from :mod:`.commands` and maps errors to exit codes.

Every command is a plain function in its own module under ``commands/``, registered here in one
table (a group is a sub-app in the other). A :class:`~podium.tools.UserError` from any layer is
printed as one line with exit code 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import typer

from podium.tools.errors import UserError

from .commands.collect import collect
from .commands.eval import eval_
from .commands.export import export
from .commands.replay import replay
from .commands.run import run
from .commands.serve import PASS_THROUGH, serve
from .commands.server import app as server_app
from .commands.setup import setup
from .commands.studio import studio
from .commands.synth import app as synth_app
from .commands.tools import tools
from .commands.train import train
from .commands.view import view

COMMANDS: dict[str, Callable[..., None]] = {
    "run": run,
    "replay": replay,
    "tools": tools,
    "setup": setup,
    "serve": serve,
    "studio": studio,
    "eval": eval_,
    "view": view,
    "collect": collect,
    "train": train,
    "export": export,
}
"""``podium NAME`` -> the function it runs, in the order ``podium --help`` lists them."""
GROUPS: dict[str, typer.Typer] = {"server": server_app, "synth": synth_app}
"""``podium NAME SUBCOMMAND`` -> the sub-app holding the subcommands."""
SETTINGS: dict[str, dict[str, bool]] = {"serve": PASS_THROUGH}
"""Click context settings of the commands that need any."""

# Click's base error class, whether typer vendors Click (typer._click, newer typer) or not.
_CLICK_ERROR = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


def build_app() -> typer.Typer:
    """The ``podium`` Typer app with every command and group registered."""
    app = typer.Typer(
        help="podium: a small policy model orchestrates priced tools and LLMs (LangGraph).",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )
    for name, function in COMMANDS.items():
        app.command(name, context_settings=SETTINGS.get(name))(function)
    for name, group in GROUPS.items():
        app.add_typer(group, name=name)
    return app


app = build_app()


def _usage_error(exc: Exception) -> int:
    """Print a Click error (bad flag, value or subcommand) as one line; return its exit code.

    Click's own report is a usage line, a hint and a boxed message; podium's rule is one line
    naming the problem and the fix. ``podium`` alone still prints the help (exit code 2).
    """
    message = " ".join(exc.format_message().split())
    if type(exc).__name__ == "NoArgsIsHelpError":  # rich help is printed already
        if message:
            print(exc.format_message())
        return 2
    ctx = getattr(exc, "ctx", None)
    fix = f": see '{ctx.command_path} --help'" if ctx is not None else ""
    print(f"podium: error: {message.rstrip('.')}{fix}", file=sys.stderr)
    return int(getattr(exc, "exit_code", 2))


def main() -> None:
    """Entry point: user mistakes become one line on stderr and exit code 2."""
    try:
        code = app(standalone_mode=False)  # Click errors reach us instead of its usage box
    except _CLICK_ERROR as exc:
        sys.exit(_usage_error(exc))
    except typer.Abort:
        print("podium: aborted", file=sys.stderr)
        sys.exit(1)
    except UserError as exc:
        print(f"podium: error: {exc}", file=sys.stderr)  # one line: no rich wrapping
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)  # typer.Exit(n) and --help return n


if __name__ == "__main__":
    main()
