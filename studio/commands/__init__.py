"""One module per ``podium`` command: plain Typer-annotated functions the CLI registers."""
