"""The wheel is the product: built, checked, installed outside the source tree, and run.

A plain install holds only what runs against AWS (no test double, no emulator);
`[local]` adds the local stack, and from there `--version`, `demo` and `review
--json` work with nothing read from the checkout. Slow (two virtual
environments), so these tests build and install once per session.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import urllib.request
import zipfile
from pathlib import Path

import pytest

from khpl_migrate.setup.local import find_jar
from tests.helpers import exports

pytestmark = pytest.mark.packaging

ROOT = Path(__file__).resolve().parents[2]
# What a production install must never hold: moto[server] and what it brings, and the
# development tools.
NOT_IN_PRODUCTION = {
    # moto[server] and its tree
    "moto",
    "flask",
    "flask-cors",
    "werkzeug",
    "blinker",
    "itsdangerous",
    "docker",
    "responses",
    "cfn-lint",
    "sympy",
    "networkx",
    "aws-xray-sdk",
    "antlr4-python3-runtime",
    "graphql-core",
    "py-partiql-parser",
    "openapi-spec-validator",
    "jsonpath-ng",
    "joserfc",
    "xmltodict",
    # development and test tools
    "pytest",
    "hypothesis",
    "playwright",
    "mypy",
    "ruff",
    "boto3-stubs",
    "kubernetes-validate",
    "twine",
    "build",
    "pip-tools",
}


def _name(distribution: str) -> str:
    return re.sub(r"[-_.]+", "-", distribution).lower()


@pytest.fixture(scope="session")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    return out


def _wheel(dist: Path) -> Path:
    [wheel] = sorted(dist.glob("*.whl"))
    return wheel


def _venv(where: Path, requirement: str) -> Path:
    """A fresh virtual environment outside the source tree with `requirement` installed."""
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True)
    pip = [str(where / "bin" / "python"), "-m", "pip", "install", "--quiet", requirement]
    done = subprocess.run(pip, capture_output=True, text=True, cwd=where)
    assert done.returncode == 0, done.stdout + done.stderr
    return where / "bin"


@pytest.fixture(scope="session")
def plain(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _venv(tmp_path_factory.mktemp("plain") / "venv", str(_wheel(dist)))


@pytest.fixture(scope="session")
def with_local(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _venv(tmp_path_factory.mktemp("local") / "venv", f"{_wheel(dist)}[local]")


def _run(bin_dir: Path, args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "HOME": str(cwd), **env}
    return subprocess.run(
        [str(bin_dir / "khpl-migrate"), *args],
        cwd=cwd,
        env=clean,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_sdist_and_wheel_pass_twine_check_and_ship_templates_and_types(dist: Path) -> None:
    files = sorted(dist.iterdir())
    assert sorted(f.suffix for f in files) == [".gz", ".whl"]
    checked = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, files)],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    names = zipfile.ZipFile(_wheel(dist)).namelist()
    for needed in (
        "khpl_migrate/py.typed",
        "khpl_migrate/review/templates/index.html",
        "khpl_migrate/review/static/review.css",
        "khpl_migrate/review/static/review.js",
    ):
        assert needed in names, needed


def test_a_plain_install_holds_no_test_or_emulator_package(plain: Path, tmp_path: Path) -> None:
    listed = subprocess.run(
        [str(plain / "python"), "-m", "pip", "list", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    installed = {_name(d["name"]) for d in json.loads(listed.stdout)}
    assert "khpl-migrate" in installed and "boto3" in installed
    assert not installed & NOT_IN_PRODUCTION, sorted(installed & NOT_IN_PRODUCTION)
    assert len(installed) <= 32, sorted(installed)  # 28 today (pip's own included): lean
    # The local stack says what to install, and nothing else goes wrong.
    copy = tmp_path / "registrations.json"
    copy.write_text("[]")
    for command in (["demo"], ["local", "up"], ["rehearse", str(copy)]):
        done = _run(plain, command, tmp_path)
        assert done.returncode == 2, done.stderr
        assert "pip install 'khpl-migrate[local]'" in done.stderr
        assert "Traceback" not in done.stderr


def test_the_installed_wheel_runs_the_demo_and_serves_the_review(
    with_local: Path, tmp_path: Path
) -> None:
    version = _run(with_local, ["--version"], tmp_path)
    assert version.returncode == 0 and "khpl-migrate 0." in version.stdout
    assert "boto3 " in version.stdout and "backend" in version.stdout
    state = tmp_path / "state"
    # DynamoDB Local's jar comes from npm, not from the package: point at it where it is.
    jar = find_jar([ROOT])
    engine = {"KHPL_DYNAMODB_LOCAL_JAR": str(jar)} if jar else {}
    demo = _run(with_local, ["demo", "--keep"], tmp_path, KHPL_STATE_DIR=str(state), **engine)
    try:
        assert demo.returncode == 0, demo.stderr
        env = {**exports(demo.stdout), "KHPL_STATE_DIR": str(state)}
        served = _review(with_local, tmp_path, env)
        # The token in the address becomes a cookie; the page comes from the wheel's own
        # templates (this folder holds no checkout).
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        page = browser.open(str(served["url"]), timeout=60)
        assert page.status == 200 and b"<html" in page.read().lower()
        assert served["checklist"], served
    finally:
        codes = _stop_review()
        # `demo --keep` keeps its stack's state in its own folder under the state dir.
        _run(with_local, ["local", "down", "--state-dir", str(state / "demo")], tmp_path)
    assert codes == [0], "review did not end with exit 0 on Ctrl-C"


_SERVERS: list[subprocess.Popen[str]] = []


def _review(bin_dir: Path, cwd: Path, env: dict[str, str]) -> dict[str, object]:
    """Start `review --json`; its first line on stdout (within a minute)."""
    clean = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "HOME": str(cwd), **env}
    errors = (cwd / "review.err").open("w")
    proc = subprocess.Popen(
        [str(bin_dir / "khpl-migrate"), "review", "--json"],
        cwd=cwd,
        env=clean,
        stdout=subprocess.PIPE,
        stderr=errors,
        text=True,
    )
    _SERVERS.append(proc)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(
        target=lambda: lines.put(proc.stdout.readline() if proc.stdout else ""), daemon=True
    ).start()
    try:
        line = lines.get(timeout=60)
    except queue.Empty:
        line = ""
    assert line.startswith("{"), (cwd / "review.err").read_text()
    answer: dict[str, object] = json.loads(line)
    return answer


def _stop_review() -> list[int]:
    """Ctrl-C each review started (a server that does not stop is killed); their exit codes."""
    codes = []
    while _SERVERS:
        proc = _SERVERS.pop()
        proc.send_signal(signal.SIGINT)
        try:
            codes.append(proc.wait(timeout=60))
        except subprocess.TimeoutExpired:
            proc.kill()
            codes.append(proc.wait())
    return codes
