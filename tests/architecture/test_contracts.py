"""The import contracts in pyproject.toml hold for the code, and they do catch a forbidden import."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(tree: Path) -> subprocess.CompletedProcess:
    """Run import-linter over the `app` package found in `tree`, with the repository's contracts."""
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(tree / "pyproject.toml"), "--no-cache"],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
    )


def copy_of_the_code(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    shutil.copytree(ROOT / "app", tree / "app", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    return tree


def test_the_code_keeps_every_contract(tmp_path):
    result = lint_imports(copy_of_the_code(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_an_engine_module_that_reads_the_database_breaks_the_engine_contract(tmp_path):
    tree = copy_of_the_code(tmp_path)
    data = tree / "app" / "engine" / "data.py"
    data.write_text(data.read_text() + "\n\nfrom app.tables import Example  # noqa: E402\n")
    result = lint_imports(tree)
    assert result.returncode != 0
    assert "app.engine is not allowed to import app.tables" in result.stdout
    assert "- app.engine.data -> app.tables" in result.stdout


def test_a_service_that_imports_fastapi_breaks_the_http_contract(tmp_path):
    tree = copy_of_the_code(tmp_path)
    service = tree / "app" / "jobs" / "jobs.py"
    service.write_text(service.read_text() + "\n\nfrom fastapi import HTTPException  # noqa: E402\n")
    result = lint_imports(tree)
    assert result.returncode != 0
    assert "app.jobs.jobs -> fastapi" in result.stdout


def test_a_service_that_imports_another_areas_routes_breaks_the_routes_contract(tmp_path):
    tree = copy_of_the_code(tmp_path)
    service = tree / "app" / "playground" / "playground.py"
    service.write_text(service.read_text() + "\n\nfrom app.datasets.routes import pages  # noqa: E402\n")
    result = lint_imports(tree)
    assert result.returncode != 0
    assert "app.playground.playground -> app.datasets.routes" in result.stdout
