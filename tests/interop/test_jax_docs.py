"""docs/jax.md runs as written: its Python blocks are executed in order in one namespace."""

from pathlib import Path

import pytest

pytest.importorskip("spyx")
pytest.importorskip("nir")

DOC = Path(__file__).resolve().parents[2] / "docs" / "jax.md"


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of every fenced block, in order."""
    blocks, language, body = [], None, []
    for line in text.splitlines():
        if line.startswith("```"):
            if language is None:
                language, body = line[3:].strip(), []
            else:
                blocks.append((language, "\n".join(body)))
                language = None
        elif language is not None:
            body.append(line)
    return blocks


def test_the_code_blocks_of_docs_jax_md_run(tmp_path, monkeypatch, capsys):
    blocks = fenced_blocks(DOC.read_text())
    code = [body for language, body in blocks if language == "python"]
    shown = [body for language, body in blocks if language == ""]
    assert len(code) >= 5
    monkeypatch.chdir(tmp_path)  # the blocks write model.t1c and trained.t1c
    namespace: dict = {}
    for body in code:
        exec(compile(body, str(DOC), "exec"), namespace)
    printed = capsys.readouterr().out.splitlines()
    for line in shown[0].splitlines() + shown[1].splitlines():  # the graph listing, the recurrent subgraph
        assert line in printed
    assert "LossyConversionWarning -> ['layer_1']" in printed
    assert any(line.startswith("same predictions in Spyx: True") for line in printed)
    assert (tmp_path / "trained.t1c").exists()
