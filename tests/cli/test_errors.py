"""How the CLI fails: one `error:` line on stderr and the documented exit code."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.cli.conftest import Mcpctl, unused_url
from tests.conftest import LiveMcpd


class _NotMcpd(BaseHTTPRequestHandler):
    """Some other web server: a 200 that is not JSON, and a 502 HTML page."""

    def do_GET(self) -> None:
        status, body = (
            (502, b"<html>bad gateway</html>")
            if "gateway" in self.path
            else (
                200,
                b"hello",
            )
        )
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def not_mcpd() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotMcpd)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_a_server_that_is_down_exits_7_naming_the_url_and_how_to_start_mcpd(
    offline_mcpctl: Mcpctl,
) -> None:
    url = unused_url()
    result = offline_mcpctl("get", "servers", env={"MCPCTL_SERVER": url})
    assert result.exit_code == 7
    assert result.stdout == ""
    assert result.stderr == (
        f"error: cannot reach mcpd at {url} (ConnectionRefusedError: [Errno 111] Connection "
        "refused); start it with `mcpctl up` or `mcpd serve`, or point at another with "
        "`mcpctl login --server URL`\n"
    )


def test_a_bad_token_exits_6(mcpctl: Mcpctl) -> None:
    result = mcpctl("get", "servers", env={"MCPCTL_TOKEN": "mcpctl_wrong"})
    assert result.exit_code == 6
    assert result.stderr == "error: invalid or expired token: log in again with `mcpctl login`\n"


def test_errors_show_no_traceback_unless_debug(offline_mcpctl: Mcpctl) -> None:
    quiet = offline_mcpctl("get", "servers")
    assert "Traceback" not in quiet.stderr
    assert len(quiet.stderr.splitlines()) == 1

    loud = offline_mcpctl("--debug", "get", "servers")
    assert loud.exit_code == 7
    assert "Traceback (most recent call last):" in loud.stderr
    assert "ConnectionRefusedError" in loud.stderr
    assert "mcpctl.errors.Unavailable: cannot reach mcpd" in loud.stderr
    assert loud.stderr.splitlines()[-1].startswith("error: cannot reach mcpd at ")


def test_an_answer_that_is_not_from_mcpd_is_an_unexpected_error_in_one_line(
    offline_mcpctl: Mcpctl, not_mcpd: str
) -> None:
    result = offline_mcpctl("get", "servers", env={"MCPCTL_SERVER": not_mcpd})
    assert result.exit_code == 1
    assert result.stderr.startswith("error: unexpected TypeError: ")
    assert result.stderr.endswith("(run with --debug for the traceback)\n")
    assert len(result.stderr.splitlines()) == 1

    debug = offline_mcpctl("--debug", "get", "servers", env={"MCPCTL_SERVER": not_mcpd})
    assert debug.exit_code == 1
    assert "Traceback (most recent call last):" in debug.stderr


def test_an_http_error_without_a_problem_body_exits_1_quoting_it(
    offline_mcpctl: Mcpctl, not_mcpd: str
) -> None:
    result = offline_mcpctl("get", "servers", env={"MCPCTL_SERVER": f"{not_mcpd}/gateway"})
    assert result.exit_code == 1
    assert result.stderr == "error: mcpd answered HTTP 502: b'<html>bad gateway</html>'\n"


def test_a_server_url_that_is_not_http_exits_3(offline_mcpctl: Mcpctl) -> None:
    result = offline_mcpctl("--server", "ftp://example.com", "get", "servers")
    assert result.exit_code == 3
    assert result.stderr == "error: server: 'ftp://example.com' is not an http(s) URL\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["frobnicate"], "No such command 'frobnicate'"),
        (["get"], "Missing argument 'ARGS...'"),
        (["get", "servers", "-o", "xml"], "Invalid value for '-o' / '--output'"),
        (["delete", "--bogus"], "No such option"),
        (["completion", "powershell"], "'powershell' is not one of 'bash', 'zsh', 'fish'"),
    ],
)
def test_usage_errors_exit_2(offline_mcpctl: Mcpctl, args: list[str], message: str) -> None:
    result = offline_mcpctl(*args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stdout == ""


def test_a_malformed_config_file_exits_3_naming_it(offline_mcpctl: Mcpctl) -> None:
    offline_mcpctl.config.write_text("contexts: [unclosed\n")
    result = offline_mcpctl("get", "servers")
    assert result.exit_code == 3
    assert result.stderr.startswith(f"error: {offline_mcpctl.config}: not a valid mcpctl config")


def test_a_config_path_that_is_a_directory_exits_3(offline_mcpctl: Mcpctl, tmp_path: Path) -> None:
    result = offline_mcpctl("get", "servers", env={"MCPCTL_CONFIG": str(tmp_path)})
    assert result.exit_code == 3
    assert result.stderr == f"error: {tmp_path}: cannot read the mcpctl config (Is a directory)\n"


def test_version_prints_the_package_version(offline_mcpctl: Mcpctl) -> None:
    result = offline_mcpctl("version")
    assert result.exit_code == 0
    assert result.stdout.startswith("mcpctl ")


def test_help_lists_the_exit_codes(offline_mcpctl: Mcpctl) -> None:
    result = offline_mcpctl("--help")
    assert result.exit_code == 0
    assert "3 invalid input" in result.stdout
    assert "7 unavailable" in result.stdout


def test_permission_errors_are_reported_by_the_daemon_verbatim(
    mcpctl: Mcpctl, live_mcpd: LiveMcpd
) -> None:
    # The bootstrap admin may do everything, so a denied request comes from a bad token here;
    # the client rebuilds the daemon's error class, which fixes the exit code.
    result = mcpctl("describe", "server", "x", env={"MCPCTL_TOKEN": ""})
    assert result.exit_code == 6
    assert result.stderr == "error: missing bearer token: log in with `mcpctl login`\n"
