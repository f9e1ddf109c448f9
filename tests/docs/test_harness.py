"""The docs harness itself: its rules hold and its failures say where (page, block, line)."""

import textwrap

import pytest

from tests.docs.harness import PageError, _Skip, output_matches, parse_blocks, run_page


def _page(tmp_path, text: str):
    path = tmp_path / "page.md"
    path.write_text(textwrap.dedent(text))
    work = tmp_path / "work"
    work.mkdir()
    return path, work


def test_blocks_share_one_namespace_and_outputs_are_compared(tmp_path):
    path, work = _page(
        tmp_path,
        """\
        # A page

        ```python
        x = 6 * 7
        open("made.txt", "w").write("here")
        ```

        ```python
        print(x)
        ```

        ```text
        42
        ```
        """,
    )
    assert run_page(path, work) == 2
    assert (work / "made.txt").read_text() == "here"


def test_a_wrong_output_names_page_block_and_line(tmp_path):
    path, work = _page(
        tmp_path,
        """\
        ```python
        print("one")
        ```

        ```text
        two
        ```
        """,
    )
    with pytest.raises(PageError, match=r"page\.md, block 1 \(python, line 1\): printed something else than block 2 "
                       r"\(line 5\)[\s\S]*-two[\s\S]*\+one"):  # fmt: skip
        run_page(path, work)


def test_a_traceback_points_at_the_page_line(tmp_path):
    path, work = _page(
        tmp_path,
        """\
        Text.

        ```python
        a = 1
        b = undefined_name
        ```
        """,
    )
    with pytest.raises(PageError, match=r"block 1 \(python, line 3\): raised[\s\S]*page\.md\", line 5"
                       r"[\s\S]*b = undefined_name[\s\S]*NameError"):  # fmt: skip
        run_page(path, work)


def test_ellipsis_matches_within_a_line_and_whole_lines():
    assert output_matches("took ... ms\nend", "took 12.5 ms\nend")
    assert output_matches("start\n...\nend", "start\na\nb\nend")
    assert output_matches("start\n...\nend", "start\nend")
    assert not output_matches("took ... ms", "took 12.5 s")
    assert not output_matches("a\nb", "a\nb\nc")
    assert output_matches("\n  a  \n\n", "  a")  # trailing spaces and blank lines at the ends do not count


def test_console_commands_run_with_talon_on_path_and_show_exit_status(tmp_path):
    path, work = _page(
        tmp_path,
        """\
        ```console
        $ talon --version
        talon, version ...
        $ talon validate missing.t1c
        error: no such .t1c file: missing.t1c
        $ echo $?
        2
        ```
        """,
    )
    assert run_page(path, work) == 1


def test_an_unshown_nonzero_exit_fails(tmp_path):
    path, work = _page(
        tmp_path,
        """\
        ```console
        $ false
        ```
        """,
    )
    with pytest.raises(PageError, match=r"line 2: \$ false\nexited with status 1"):
        run_page(path, work)


def test_shell_blocks_must_be_console_or_not_run(tmp_path):
    path, work = _page(
        tmp_path,
        """\
        ```bash
        make demo
        ```
        """,
    )
    with pytest.raises(PageError, match="a bash block is not run"):
        run_page(path, work)
    (tmp_path / "exempt").mkdir()
    path, work = _page(
        tmp_path / "exempt",
        """\
        <!-- not-run: builds a virtual environment -->

        ```bash
        make demo
        ```
        """,
    )
    assert run_page(path, work) == 0


def test_unlabelled_output_after_python_is_refused(tmp_path):
    path, work = _page(
        tmp_path,
        """\
        ```python
        print(1)
        ```

        ```
        1
        ```
        """,
    )
    with pytest.raises(PageError, match=r"block 2 .*unlabelled block right after a python block"):
        run_page(path, work)


def test_not_run_needs_a_reason():
    with pytest.raises(PageError, match="needs a reason"):
        parse_blocks("<!-- not-run: -->\n```python\nx\n```\n", "p.md")


def test_indented_blocks_in_lists_are_found():
    blocks = parse_blocks("* item\n\n  ```python\n  x = 1\n  ```\n")
    assert [(b.language, b.body, b.line) for b in blocks] == [("python", "x = 1", 3)]


def test_a_missing_optional_dependency_skips(tmp_path):
    path, work = _page(
        tmp_path,
        """\
        ```python
        import a_package_that_is_not_installed_here
        ```
        """,
    )
    with pytest.raises(_Skip):
        run_page(path, work)
