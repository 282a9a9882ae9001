"""``h3spark web CONFIG``: what it prints, and the mistakes it refuses (exit 2, no traceback)."""

from __future__ import annotations

import re
import socket

import pytest

from h3spark.cli import main


def write(tmp_path, text: str) -> str:
    path = tmp_path / "web.yaml"
    path.write_text(text)
    return str(path)


MASTER_ONLY = "name: w\nweb: {port: 0, downpour: {data: {shards: 2}}}\n"


def test_it_prints_the_url_with_the_token_and_the_worker_page(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("H3SPARK_WEB_TOKEN", raising=False)
    assert main(["web", write(tmp_path, MASTER_ONLY), "--for", "0.2", "--workdir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    url = re.search(r"h3spark web w: (http://127\.0\.0\.1:\d+/)#token=(\S+)", out)
    assert url and f"worker page: {url[1]}worker#token={url[2]}" in out and f"token: {url[2]} (drawn at start" in out
    assert "downpour  version 0, 0 pushes applied" in out


def test_the_token_can_come_from_the_environment(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("H3SPARK_WEB_TOKEN", "e" * 20)
    assert main(["web", write(tmp_path, MASTER_ONLY), "--for", "0.2", "--workdir", str(tmp_path)]) == 0
    assert "token: eeeeeeeeeeeeeeeeeeee (from $H3SPARK_WEB_TOKEN" in capsys.readouterr().out
    monkeypatch.setenv("H3SPARK_WEB_TOKEN", "short")
    assert main(["web", write(tmp_path, MASTER_ONLY), "--for", "0.2", "--workdir", str(tmp_path)]) == 2
    assert "a token has at least 16 printable characters" in capsys.readouterr().err


@pytest.mark.parametrize("text, argv, words", [
    ("name: w\n", [], "needs an actors: section (the network it shows) or web.downpour"),
    (MASTER_ONLY, ["--port", "70000"], "--port must be in [0, 65535]"),
    (MASTER_ONLY, ["--for", "0"], "--for must be a number of seconds > 0"),
    ("name: w\nweb: {allowed_origins: ['https://example.org/app']}\n", [], "an origin is scheme://host[:port] with no path"),
    ("name: w\nactors: {actors: {a: {model: {mlp: {input_shape: [4], classes: 2}}}}}\nweb: {network: join}\n", [],
     "web.network: join follows a network running in another process"),
])
def test_mistakes_exit_2_saying_what_to_change(tmp_path, capsys, text, argv, words):
    assert main(["web", write(tmp_path, text), *argv, "--workdir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err


def test_a_port_in_use_exits_2_before_anything_listens(tmp_path, capsys):
    with socket.create_server(("127.0.0.1", 0)) as held:
        port = held.getsockname()[1]
        assert main(["web", write(tmp_path, MASTER_ONLY), "--port", str(port), "--workdir", str(tmp_path)]) == 2
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
