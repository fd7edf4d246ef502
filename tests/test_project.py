"""Project hygiene: lint, light imports, and the README's commands."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_ruff_is_clean():
    """`ruff check` reports nothing."""
    result = subprocess.run([sys.executable, "-m", "ruff", "check", str(REPO)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout


def test_mypy_is_clean(tmp_path):
    """mypy --strict, as pyproject.toml's [tool.mypy] sets it up, finds no error in the package."""
    command = [sys.executable, "-m", "mypy", "--config-file", str(REPO / "pyproject.toml"), "--cache-dir", str(tmp_path)]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_cli_does_not_import_heavy_libraries():
    """Reading records needs neither polars nor pglast: they load only where they are used."""
    code = "import sys, logdiag.cli; print(sorted(m for m in ('polars', 'pglast') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_ci_runs_the_readme_test_command():
    """.ci/run runs exactly the test command the README gives a newcomer."""
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    command = next(line for line in ci.splitlines() if line.startswith("python3 -m venv"))
    assert command in readme


def test_every_command_is_documented():
    """Each CLI command has a README line and a docs/ page that mention it."""
    from logdiag.cli import app

    docs = " ".join(p.read_text() for p in (REPO / "docs").glob("*.md"))
    readme = (REPO / "README.md").read_text()
    for command in app.registered_commands:
        name = command.name or command.callback.__name__
        assert f"logdiag {name}" in readme, name
        assert f"logdiag {name}" in docs, name


def _slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def test_links_to_sections_resolve():
    """Every ``page.md#section`` link in the README and docs/ names a heading (or an explicit
    anchor) of that page."""
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    for page in pages:
        for target, anchor in re.findall(r"\]\(([\w./-]+\.md)#([^)]+)\)", page.read_text()):
            linked = (page.parent / target).resolve()
            text = linked.read_text()
            anchors = {_slug(h) for h in re.findall(r"^#+ (.+)$", text, re.MULTILINE)}
            anchors |= set(re.findall(r'<a id="([^"]+)"', text))
            assert anchor in anchors, f"{page.name}: {target}#{anchor}"


def test_analyze_is_the_packages_entry_point():
    """``from logdiag import analyze`` is the library's entry point, logdiag.pipeline's analyze."""
    import logdiag
    import logdiag.pipeline

    assert logdiag.analyze is logdiag.pipeline.analyze
    assert logdiag.Run is logdiag.pipeline.Run
