"""One module per ``podium`` command; :mod:`podium.studio.cli` registers them all.

A command module holds a plain Typer-annotated function (or, for a group, a ``typer.Typer``
sub-app) and imports its heavy dependencies inside the function, so ``podium --help`` stays
fast. Options several commands share are defined once in :mod:`.options`.
"""
