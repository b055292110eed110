"""``atomic_path``: whole files or none, with the permissions a plain write would give."""

from __future__ import annotations

import os
import stat

import pytest

from podium.tools.paths import atomic_path


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_file_gets_the_umask_mode_not_mkstemps_0600(tmp_path):
    target = tmp_path / "report.html"
    with atomic_path(target) as tmp:
        tmp.write_text("<html>")
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    assert _mode(target) == _mode(plain) != 0o600
    assert target.read_text() == "<html>"


def test_an_existing_file_keeps_its_mode(tmp_path):
    target = tmp_path / "summary.json"
    target.write_text("{}")
    os.chmod(target, 0o640)
    with atomic_path(target) as tmp:
        tmp.write_text('{"a": 1}')
    assert _mode(target) == 0o640 and target.read_text() == '{"a": 1}'


def test_a_failed_write_leaves_the_old_content_and_no_temporary(tmp_path):
    target = tmp_path / "results.jsonl"
    target.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["results.jsonl"]
