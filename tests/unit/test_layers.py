"""The import-linter layer contracts: they name every module, and they catch a violation.

``lint-imports`` runs in ``make check``; these tests make sure the contracts
cannot silently stop covering new code, and that a wrong-way import really
fails the check (on a copy of the tree, never on the real one).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
CONTRACTS = PYPROJECT["tool"]["importlinter"]["contracts"]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _layer_names() -> set[str]:
    (layers,) = [c for c in CONTRACTS if c["type"] == "layers" and c.get("containers") == ["app"]]
    names: set[str] = set()
    for layer in layers["layers"]:
        for separator in ("|", ":"):
            layer = layer.replace(separator, " ")
        names.update(layer.split())
    return names


def _app_children() -> set[str]:
    children = set()
    for path in (ROOT / "app").iterdir():
        if path.name.startswith(("_", ".")):
            continue
        if path.suffix == ".py" or (path.is_dir() and (path / "__init__.py").exists()):
            children.add(path.stem)
    return children


def test_every_module_and_package_of_app_sits_in_a_layer() -> None:
    assert _app_children() == _layer_names()


def test_the_lambda_code_contract_lists_every_core_module() -> None:
    (lambda_code,) = [c for c in CONTRACTS if c["name"].startswith("Lambda code")]
    outer = {"local", "web", "ops"}
    expected = {f"app.{name}" for name in _app_children() - outer}
    assert set(lambda_code["source_modules"]) == expected


def _lint_copy(tmp_path: Path, module: str, line: str) -> subprocess.CompletedProcess[str]:
    """Run lint-imports on a copy of the tree with ``line`` appended to ``module``."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "static", "vendor")
    for package in ("app", "lambda_handlers"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / (module.replace(".", "/") + ".py")
    target.write_text(target.read_text() + f"\n{line}\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "COLUMNS": "300"}  # one line a contract
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("app.playback", "import flask", "Lambda code"),
        ("app.catalog", "import app.web", "app: local stack"),
        ("app.http.viewer", "import app.local.edge", "app: local stack"),
        ("app.ops.cli", "import app.local.stack", "app: local stack"),
        ("app.web.csrf", "import app.ops.uploads", "app: local stack"),
        ("app.users", "import lambda_handlers.playback", "Nothing in app imports"),
        ("lambda_handlers.playback", "import app.web", "Lambda entry points"),
    ],
)
def test_a_wrong_way_import_breaks_a_contract(
    tmp_path: Path, module: str, line: str, contract: str
) -> None:
    done = _lint_copy(tmp_path, module, line)

    assert done.returncode != 0, done.stdout
    broken = [row for row in done.stdout.splitlines() if row.endswith("BROKEN")]
    assert any(row.startswith(contract) for row in broken), done.stdout


def test_the_real_tree_keeps_every_contract(tmp_path: Path) -> None:
    done = _lint_copy(tmp_path, "app.errors", "")

    assert done.returncode == 0, done.stdout + done.stderr
