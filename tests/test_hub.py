"""The Hub check (`models.hub_reachable`): offline switches read as huggingface_hub reads them,
mirrors (``HF_ENDPOINT``) and HTTPS proxies honoured. No network: a proxy on the loopback
interface stands in for the world, and the host names end in ``.test`` (never resolvable)."""

from __future__ import annotations

import os
import socketserver
import subprocess
import sys
import textwrap
import threading

import pytest

from course_utils import models


@pytest.fixture(autouse=True)
def _fresh_check(monkeypatch):
    """Each test starts with no offline switch, no proxy settings and a new Hub session."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # conftest set it before the import
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "NO_PROXY", "no_proxy", "ALL_PROXY",
                "all_proxy", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):  # fmt: skip
        monkeypatch.delenv(var, raising=False)
    models.hub_reachable.cache_clear()
    _reset_hub_session()
    yield
    models.hub_reachable.cache_clear()
    _reset_hub_session()


def _reset_hub_session():
    """huggingface_hub reads proxy settings when it creates its session: start a new one."""
    from huggingface_hub import utils

    for reset in ("close_session", "reset_sessions"):  # huggingface_hub >= 1.0, < 1.0
        if hasattr(utils, reset):
            getattr(utils, reset)()


class _Proxy(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@pytest.fixture
def proxy():
    """A loopback HTTP proxy that records each request line and answers ``proxy.reply``."""
    seen: list[str] = []

    class Handler(socketserver.StreamRequestHandler):
        def handle(self):
            line = self.rfile.readline().decode("latin-1").strip()
            seen.append(line)
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # the headers
            status = server.reply_connect if line.startswith("CONNECT") else server.reply
            self.wfile.write(f"HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n".encode())

    server = _Proxy(("127.0.0.1", 0), Handler)
    server.reply, server.reply_connect, server.seen = "200 OK", "403 Forbidden", seen
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def _no_network(monkeypatch):
    from huggingface_hub import utils

    def refuse(*args, **kwargs):
        raise AssertionError("offline mode must not touch the network")

    monkeypatch.setattr(utils, "get_session", refuse)


@pytest.mark.parametrize("value", ["1", "ON", "yes", "True", "TRUE"])
def test_offline_values_as_huggingface_hub_reads_them(monkeypatch, value):
    monkeypatch.setenv("HF_HUB_OFFLINE", value)
    _no_network(monkeypatch)
    assert models.hub_offline() and models.hub_reachable() is False


@pytest.mark.parametrize("value", ["0", "false", "off", "no", ""])
def test_other_values_are_online(monkeypatch, value):
    monkeypatch.setenv("HF_HUB_OFFLINE", value)
    assert not models.hub_offline()


def test_transformers_offline_counts_when_hf_hub_offline_is_unset(monkeypatch):
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    assert models.hub_offline()
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # huggingface_hub: HF_HUB_OFFLINE wins
    assert not models.hub_offline()


def test_huggingface_hub_switched_off_at_import_counts(monkeypatch):
    """The Hub client read HF_HUB_OFFLINE=1 when it was imported and refuses requests since."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    _no_network(monkeypatch)
    assert models.hub_offline() and models.hub_reachable() is False


def test_truthy_values_match_huggingface_hub():
    from huggingface_hub import constants

    assert models._HF_TRUE == set(constants.ENV_VARS_TRUE_VALUES)


def test_mirror_through_a_proxy_is_reachable(monkeypatch, proxy):
    """HF_ENDPOINT's mirror is the host asked for, and the request goes through the proxy."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", "http://hf-mirror.test")
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    assert models.hub_reachable(timeout=5) is True
    assert len(proxy.seen) == 1 and proxy.seen[0].startswith("HEAD http://hf-mirror.test")


@pytest.mark.parametrize("variable", ["HTTPS_PROXY", "https_proxy"])
def test_https_goes_through_the_https_proxy(monkeypatch, proxy, variable):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", "https://hf-mirror.test")
    monkeypatch.setenv(variable, proxy.url)
    assert models.hub_reachable(timeout=5) is False  # the proxy refuses the tunnel
    assert proxy.seen and proxy.seen[0].startswith("CONNECT hf-mirror.test:443 ")


def test_a_proxy_error_page_means_unreachable(monkeypatch, proxy):
    from huggingface_hub import constants

    proxy.reply = "502 Bad Gateway"
    monkeypatch.setattr(constants, "ENDPOINT", "http://hf-mirror.test")
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    assert models.hub_reachable(timeout=5) is False and proxy.seen


def test_hf_endpoint_is_read_from_the_environment(proxy):
    """End to end in a new process: HF_ENDPOINT and the proxy variables, as a learner sets them."""
    script = textwrap.dedent(
        """
        from course_utils import models
        print(models.hub_endpoint(), models.hub_reachable(timeout=5))
        """
    )
    env = {k: v for k, v in os.environ.items() if "PROXY" not in k.upper() and "OFFLINE" not in k}
    env.update(HF_ENDPOINT="http://hf-mirror.test/", HTTP_PROXY=proxy.url)
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["http://hf-mirror.test", "True"]
    assert len(proxy.seen) == 1 and "hf-mirror.test" in proxy.seen[0]


def test_unreachable_hub_fails_fast(monkeypatch):
    """Nothing listens on this loopback port: the check answers False at once, no retries."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    assert models.hub_reachable(timeout=2) is False
