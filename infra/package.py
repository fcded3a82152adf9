"""Build the Lambda artifacts, and the deployable template that points at them.

    python infra/package.py                      # arm64 and x86_64 (what `make package` runs)
    python infra/package.py --arch x86_64        # one architecture
    python infra/package.py --bench              # cold import time of each handler vs boto3

Two zips per architecture, under ``build/lambda/``:

``handlers-<arch>.zip``
    ``app/`` (the core modules: no ``app/web``, no ``app/local``, no operator
    commands), ``lambda_handlers/`` and the runtime dependencies (PyJWT,
    cryptography and what they pull in). No boto3: Lambda's Python runtime
    provides boto3 and botocore. No Flask, no werkzeug, no emulator.
``web-<arch>.zip``
    the same plus ``app/web`` (Flask app, its static files with the player's
    hls.js under ``static/vendor/``, which the build refuses to leave out, not
    the npm project ``app/web/player``, and two entry
    points: :mod:`app.web.lambda_entry` for the viewer pages,
    :mod:`app.web.lambda_admin_entry` for the admin pages, each function
    with its own role), ``templates/`` at the zip's root (where
    ``app/web`` looks for them: two levels above ``app/web/__init__.py``), and
    the web dependencies (Flask, Authlib, requests, apig-wsgi).

Dependencies are the ``[project] dependencies`` and the ``web`` extra of
pyproject.toml (less boto3), pinned to the versions installed in the running
environment (the versions the tests ran against), installed by pip as
manylinux wheels for the target CPU and for Lambda's Python
(:data:`LAMBDA_PYTHON`), and cached under ``.cache/lambda-deps/``: a second
build only zips. Zips are reproducible (sorted entries, fixed timestamps).

Beside the zips it writes ``template-<arch>.yaml``: ``infra/template.yaml``
with each ``CodeUri`` pointing at that architecture's zip and the
``Architecture`` parameter pinned to it, so what is deployed always matches
what was built (docs/deploy.md).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "build" / "lambda"
CACHE_DIR = ROOT / ".cache" / "lambda-deps"
TEMPLATE = ROOT / "infra" / "template.yaml"

LAMBDA_PYTHON = "3.12"
"""Python of the Lambda runtime (``Runtime: python3.12`` in the template)."""

# Lambda's python3.12 runs on Amazon Linux 2023 (glibc 2.34): any of these wheels loads.
PLATFORMS: dict[str, tuple[str, ...]] = {
    "arm64": ("manylinux2014_aarch64", "manylinux_2_28_aarch64", "manylinux_2_34_aarch64"),
    "x86_64": ("manylinux2014_x86_64", "manylinux_2_28_x86_64", "manylinux_2_34_x86_64"),
}
ARCHITECTURES: tuple[str, ...] = ("arm64", "x86_64")
KINDS: tuple[str, ...] = ("handlers", "web")

PROVIDED_BY_LAMBDA = frozenset({"boto3", "botocore", "s3transfer", "jmespath"})
"""Distributions the Lambda Python runtime ships; never packaged."""

FORBIDDEN_IN_HANDLERS = frozenset({"flask", "werkzeug", "jinja2", "moto", "authlib", "apig_wsgi"})
"""Top-level packages that must never be in ``handlers-<arch>.zip``."""

NOT_IN_HANDLERS: tuple[str, ...] = ("web", "local", "ops")
"""``app/`` folders never in ``handlers-<arch>.zip``: Flask, the local stack, operator tools."""
NOT_IN_WEB: tuple[str, ...] = ("local", "ops")
"""``app/`` folders never in ``web-<arch>.zip``."""
PLAYER_SOURCES = "app/web/player"
"""The player's npm project (package.json, node_modules): a build input, never shipped."""
WEB_VENDOR: tuple[str, ...] = (
    "app/web/static/vendor/hls.min.js",
    "app/web/static/vendor/hls.worker.js",
)
"""What the Makefile's npm step copies from hls.js; the web zip must carry it."""
_SKIP_PARTS = frozenset({"__pycache__", "tests", ".mypy_cache", ".pytest_cache", "node_modules"})
_SKIP_SUFFIXES = (".pyc", ".pyo")
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_HANDLER = re.compile(r"^\s+Handler:\s*([A-Za-z_][\w.]*)\.(\w+)\s*$", re.MULTILINE)
WEB_ENTRIES = {"app.web.lambda_entry": "web", "app.web.lambda_admin_entry": "admin_web"}
"""The web zip's entry modules, by the name :func:`handler_modules` gives them."""
INLINE_MODULE = "index"
"""A function whose code is inline in the template (``Code.ZipFile``, the bucket's CORS
custom resource): CloudFormation names its module ``index``; nothing to package."""


def handler_modules(template: Path = TEMPLATE) -> dict[str, str]:
    """Entry module of every function in the template, by name (``playback``, ``web``...).

    A handler module's name is its last part; the web zip's entries are named by
    :data:`WEB_ENTRIES`.

    :raises PackagingError: a ``Handler`` names a module that does not exist in the tree.
    """
    modules: dict[str, str] = {}
    for module, _function in _HANDLER.findall(template.read_text()):
        if module == INLINE_MODULE:
            continue
        if not (ROOT / (module.replace(".", "/") + ".py")).is_file():
            raise PackagingError(f"{template.name}: Handler module {module} does not exist")
        modules[WEB_ENTRIES.get(module, module.rsplit(".", 1)[-1])] = module
    if not modules:
        raise PackagingError(f"{template.name} names no Handler")
    return modules


BENCH_ENV: dict[str, str] = {
    # Placeholders that pass app.config's validation, so an entry module that builds
    # its app at import (the web one) can; nothing is called at import time, and the
    # endpoint points at a closed loopback port in case something tried.
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
    "VIDGATE_USER_POOL_ID": "us-east-1_Bench0000",
    "VIDGATE_CLIENT_ID": "bench-client",
    "VIDGATE_USERS_TABLE": "bench-users",
    "VIDGATE_VIDEOS_TABLE": "bench-videos",
    "VIDGATE_AUDIT_TABLE": "bench-audit",
    "VIDGATE_SESSIONS_TABLE": "bench-sessions",
    "VIDGATE_SESSION_KEY_ID": "alias/bench-sessions",
    "VIDGATE_BUCKET": "bench-media",
    "VIDGATE_CDN_URL": "https://bench.cloudfront.net",
    "VIDGATE_SIGNING_KEY_SECRET": "bench/cloudfront-key",
    "VIDGATE_KEY_PAIR_ID": "KBENCH",
    "VIDGATE_SECRET_KEY": "bench-secret-key-bench-secret-key-bench",
}


class PackagingError(RuntimeError):
    """A build step failed (pip, a missing source folder, a forbidden package)."""


@dataclass(frozen=True)
class Artifact:
    kind: str
    arch: str
    path: Path

    @property
    def size(self) -> int:
        return self.path.stat().st_size


# --------------------------------------------------------------------------- requirements


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if not match:
        raise PackagingError(f"cannot read requirement {requirement!r}")
    return _normalize(match.group(1))


def requirements(kind: str, pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    """What ``kind`` needs from PyPI: pyproject's dependencies (+ the web extra), less boto3."""
    if kind not in KINDS:
        raise PackagingError(f"unknown artifact kind {kind!r}; known: {KINDS}")
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    wanted = list(project["dependencies"])
    if kind == "web":
        wanted += [
            r for r in project["optional-dependencies"]["web"] if not r.startswith("vidgate")
        ]
    return [r for r in wanted if _requirement_name(r) not in PROVIDED_BY_LAMBDA]


def installed_pins() -> list[str]:
    """``name==version`` of every distribution in this environment (pip constraints)."""
    pins = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name and _normalize(name) != "vidgate":
            pins[_normalize(name)] = f"{_normalize(name)}=={dist.version}"
    return [pins[name] for name in sorted(pins)]


# --------------------------------------------------------------------------- dependencies


def install_dependencies(
    kind: str,
    arch: str,
    *,
    python_version: str = LAMBDA_PYTHON,
    cache_dir: Path = CACHE_DIR,
) -> Path:
    """A folder with ``kind``'s dependencies for ``arch``; cached by what went into it."""
    if arch not in PLATFORMS:
        raise PackagingError(f"unknown architecture {arch!r}; known: {ARCHITECTURES}")
    wanted = requirements(kind)
    pins = installed_pins()
    key = hashlib.sha256(
        json.dumps([wanted, pins, PLATFORMS[arch], python_version]).encode()
    ).hexdigest()[:16]
    target = cache_dir / f"{kind}-{arch}-py{python_version}-{key}"
    if (target / ".complete").exists():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=cache_dir))
    try:
        constraints = staging / "constraints.txt"
        constraints.write_text("\n".join(pins) + "\n", encoding="utf-8")
        site = staging / "site"
        command = [
            sys.executable, "-m", "pip", "install",
            "--quiet", "--disable-pip-version-check", "--no-compile",
            "--target", str(site),
            "--implementation", "cp",
            "--python-version", python_version,
            "--only-binary=:all:",
            *[arg for platform in PLATFORMS[arch] for arg in ("--platform", platform)],
            "-c", str(constraints),
            *wanted,
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        if result.returncode != 0:
            raise PackagingError(
                f"pip could not install {kind} dependencies for {arch}:\n{result.stderr[-4000:]}"
            )
        if (site / "bin").exists():  # console scripts: useless in a Lambda zip
            shutil.rmtree(site / "bin")
        (site / ".complete").write_text("ok\n", encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        site.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


# --------------------------------------------------------------------------- sources


def _walk(base: Path, folder: Path) -> Iterator[tuple[Path, str]]:
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(base)
        if path.is_dir() or _SKIP_PARTS & set(relative.parts):
            continue
        if path.suffix in _SKIP_SUFFIXES or path.name == ".complete":
            continue
        yield path, relative.as_posix()


def source_files(kind: str, root: Path = ROOT) -> list[tuple[Path, str]]:
    """(file, name in the zip) of vidgate's own code for ``kind``: by folder, never by file name."""
    excluded = NOT_IN_WEB if kind == "web" else NOT_IN_HANDLERS
    files = [
        (path, name)
        for path, name in _walk(root, root / "app")
        if name.split("/")[1] not in excluded and not name.startswith(PLAYER_SOURCES + "/")
    ]
    files += list(_walk(root, root / "lambda_handlers"))
    if kind == "web":
        templates = root / "templates"
        if not templates.is_dir():
            raise PackagingError(f"{templates} is missing: the web app needs its templates")
        files += list(_walk(root, templates))
        missing = [name for name in WEB_VENDOR if not (root / name).is_file()]
        if missing:
            raise PackagingError(
                f"{', '.join(missing)} missing: the player needs hls.js; "
                "`make player` (run by `make package`) installs it with npm ci and copies it there"
            )
    return files


def _write_zip(destination: Path, entries: Iterable[tuple[Path, str]]) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_suffix(".zip.partial")
    seen: set[str] = set()
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for path, name in sorted(entries, key=lambda entry: entry[1]):
            if name in seen:
                raise PackagingError(f"{name} would be in {destination.name} twice")
            seen.add(name)
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            mode = 0o755 if os.access(path, os.X_OK) and path.suffix == ".so" else 0o644
            info.external_attr = (0o100000 | mode) << 16
            zf.writestr(info, path.read_bytes())
    partial.replace(destination)


def build(
    kind: str,
    arch: str,
    *,
    out_dir: Path = OUT_DIR,
    python_version: str = LAMBDA_PYTHON,
    cache_dir: Path = CACHE_DIR,
) -> Artifact:
    """Build ``<kind>-<arch>.zip`` in ``out_dir``.

    :raises PackagingError: pip failed, a source folder is missing, or a
        forbidden package (Flask, the emulator...) ended up in the handler zip.
    """
    deps = install_dependencies(kind, arch, python_version=python_version, cache_dir=cache_dir)
    entries = list(_walk(deps, deps)) + source_files(kind)
    if kind == "handlers":
        top_level = {name.split("/", 1)[0] for _, name in entries}
        bad = sorted(top_level & FORBIDDEN_IN_HANDLERS)
        if bad:
            raise PackagingError(f"the handler artifact must not contain {bad}")
    path = out_dir / f"{kind}-{arch}.zip"
    _write_zip(path, entries)
    return Artifact(kind, arch, path)


def deploy_template(arch: str, *, out_dir: Path = OUT_DIR, template: Path = TEMPLATE) -> Path:
    """Write ``template-<arch>.yaml``: CodeUri and the Architecture parameter set for ``arch``."""
    if arch not in PLATFORMS:
        raise PackagingError(f"unknown architecture {arch!r}; known: {ARCHITECTURES}")
    text = template.read_text(encoding="utf-8")
    code_uri = re.compile(r"^(\s+CodeUri:\s*)\S*/(handlers|web)-[a-z0-9_]+\.zip\s*$", re.MULTILINE)
    text, count = code_uri.subn(lambda m: f"{m.group(1)}{m.group(2)}-{arch}.zip", text)
    if count == 0:
        raise PackagingError(f"{template} has no CodeUri pointing at a built zip")
    parameter = re.compile(
        r"(^  Architecture:\n    Type: String\n)    Default: \S+\n    AllowedValues: \[[^\]]*\]\n",
        re.MULTILINE,
    )
    text, count = parameter.subn(
        lambda m: f"{m.group(1)}    Default: {arch}\n    AllowedValues: [{arch}]\n", text
    )
    if count != 1:
        raise PackagingError(f"{template}: cannot find the Architecture parameter to pin")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"template-{arch}.yaml"
    path.write_text(
        f"# Generated by infra/package.py from infra/template.yaml for {arch}: do not edit.\n"
        + text,
        encoding="utf-8",
    )
    return path


def build_all(archs: Sequence[str] = ARCHITECTURES, *, out_dir: Path = OUT_DIR) -> list[Artifact]:
    """Both artifacts and the deploy template for each architecture in ``archs``."""
    artifacts = []
    for arch in archs:
        for kind in KINDS:
            artifacts.append(build(kind, arch, out_dir=out_dir))
        deploy_template(arch, out_dir=out_dir)
    return artifacts


# --------------------------------------------------------------------------- cold imports


IMPORT_FLOOR = "boto3"
"""What every handler imports anyway (Lambda's runtime provides it): the cold-import floor."""


def _import_time_us(python: str, module: str, path: Sequence[str], env: dict[str, str]) -> int:
    """Cumulative microseconds ``python -X importtime`` reports for importing ``module``."""
    code = f"import sys; sys.path[:0] = {list(path)!r}; import {module}"
    result = subprocess.run(  # noqa: S603 - our interpreter, our module names
        [python, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    if result.returncode != 0:
        raise PackagingError(f"importing {module} failed:\n{result.stderr[-2000:]}")
    for line in result.stderr.splitlines():
        # "import time:   self [us] | cumulative | imported package"
        parts = [part.strip() for part in line.removeprefix("import time:").split("|")]
        if len(parts) == 3 and parts[2] == module:
            return int(parts[1])
    raise PackagingError(f"no import time for {module} in python -X importtime output")


def cold_import_times(
    python: str | None = None,
    *,
    root: Path = ROOT,
    env: dict[str, str] | None = None,
    runs: int = 3,
) -> dict[str, float]:
    """Median seconds each handler module takes to import in a fresh interpreter, by handler name.

    Measured with ``python -X importtime`` on the source tree (``root`` first on
    the path), ``runs`` new processes per module after one unmeasured warm-up,
    the modules taking turns so that they share the machine's noise; nothing
    is imported twice and nobody pays the bytecode compiler: the
    bytecode goes to a temporary ``PYTHONPYCACHEPREFIX`` whatever
    ``PYTHONDONTWRITEBYTECODE`` says. The handlers are those the template names
    (:func:`handler_modules`), plus :data:`IMPORT_FLOOR` under its own name.
    Import only: the first event (settings, clients, the signing key, the JWKS)
    is ``make bench``'s cold-start figure. The environment is the current one
    plus :data:`BENCH_ENV` (and ``env``).
    """
    if runs < 1:
        raise ValueError(f"runs must be >= 1, got {runs}")
    python = python or sys.executable
    modules = {IMPORT_FLOOR: IMPORT_FLOOR, **handler_modules()}
    samples: dict[str, list[int]] = {name: [] for name in modules}
    with tempfile.TemporaryDirectory(prefix="vidgate-pycache-") as pycache:
        run_env = {**os.environ, **BENCH_ENV, **(env or {}), "PYTHONPYCACHEPREFIX": pycache}
        run_env.pop("PYTHONDONTWRITEBYTECODE", None)
        for module in modules.values():  # warm-up: compiles
            _import_time_us(python, module, [str(root)], run_env)
        for _ in range(runs):
            for name, module in modules.items():
                samples[name].append(_import_time_us(python, module, [str(root)], run_env))
    return {name: statistics.median(us) / 1e6 for name, us in samples.items()}


# --------------------------------------------------------------------------- command line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build vidgate's Lambda artifacts.")
    parser.add_argument(
        "--arch",
        choices=ARCHITECTURES,
        action="append",
        help="architecture to build (repeatable; default: all)",
    )
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output folder")
    parser.add_argument(
        "--bench",
        action="store_true",
        help="print each handler's cold import time instead of building",
    )
    args = parser.parse_args(argv)
    if args.bench:
        times = cold_import_times()
        floor = times[IMPORT_FLOOR]
        for name, seconds in times.items():
            print(f"cold import {name:<18} {seconds * 1000:8.1f} ms  {seconds / floor:5.2f}x boto3")
        return 0
    try:
        artifacts = build_all(args.arch or ARCHITECTURES, out_dir=args.out)
    except PackagingError as exc:
        print(f"package: {exc}", file=sys.stderr)
        return 1
    for artifact in artifacts:
        print(f"{artifact.path}  {artifact.size / 1e6:6.2f} MB")
    for arch in args.arch or ARCHITECTURES:
        print(f"deploy template: {args.out / f'template-{arch}.yaml'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
