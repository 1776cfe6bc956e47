"""The web client's files against a real Hypercorn server: odd paths get the documented 404, quietly.

Over-long names used to escape as OSError (500 and a traceback repeating the name at ERROR), and
symlinks inside the web directory were followed out of it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.helpers import make_settings
from tests.live_server import serve_app
from tests.raw_http import get_raw
from trio_ticker.app import create_app
from trio_ticker.web_files import WebFiles

ODD_PATHS = [
    "/" + "a" * 256,  # one name over NAME_MAX
    "/" + "a/" * 2100 + "b",  # every name short, the whole path over PATH_MAX
    "/" + "%e9" * 100,  # not UTF-8: decoded to 100 replacement characters, 300 bytes
    "/" + "a%20" * 300,
    "/%00",
    "/index.html%00.js",
    "/..",
    "/../secret.txt",
    "/%2e%2e/secret.txt",
    "/..%2fsecret.txt",
    "/sub/%2e%2e/index.html",  # stays inside, but not the file's own name
    "/./index.html",
    "/sub/../index.html",
    "/index.html/",  # a file is not a directory
    "/sub/app.js/",
    "/index.html/x",
    "/sub",  # a directory
    "/sub/",
    "/escape",  # a symlink to a file outside the web directory
    "/escape_dir/secret.txt",  # a symlink to a directory outside it
    "/dangling",
    "/loop",
    "/fifo",
    "/no-such-file.js",
]


@pytest.fixture
def web_dir(tmp_path: Path) -> Iterator[Path]:
    web = tmp_path / "web"
    (web / "sub").mkdir(parents=True)
    (web / "index.html").write_text("<title>board</title>")
    (web / "sub" / "app.js").write_text("export {};")
    (tmp_path / "secret.txt").write_text("SECRET")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_text("SECRET")
    (web / "escape").symlink_to(tmp_path / "secret.txt")
    (web / "escape_dir").symlink_to(tmp_path / "outside")
    (web / "inside").symlink_to(web / "sub" / "app.js")
    (web / "dangling").symlink_to(web / "missing")
    (web / "loop").symlink_to("loop")
    os.mkfifo(web / "fifo")
    yield web


async def test_odd_web_paths_get_the_documented_404_and_log_nothing(
    web_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(web_dir=web_dir)
    app = create_app(settings)
    caplog.set_level("DEBUG", logger="trio_ticker")
    logging.getLogger("trio_ticker").addHandler(caplog.handler)  # its own handler does not propagate
    try:
        async with (
            serve_app(app, settings) as address,
            httpx.AsyncClient(base_url=f"http://{address}", timeout=10) as http,
        ):
            caplog.clear()  # the startup lines
            for target in ODD_PATHS:
                status, headers, body = await get_raw(address, target)
                assert (status, headers[b"content-type"]) == (404, b"application/json"), target[:60]
                error = orjson.loads(body)
                assert (error["type"], error["code"]) == ("error", "not_found"), target[:60]
            assert (await http.get("/")).text == "<title>board</title>"
            assert (await http.get("/sub/app.js")).text == "export {};"
            assert (await http.get("/inside")).text == "export {};"  # a symlink that stays inside is served
            assert (await http.get("/index.html?v=2")).status_code == 200
            logged = caplog.text  # before shutdown logs its own lines
    finally:
        logging.getLogger("trio_ticker").removeHandler(caplog.handler)
    assert logged == ""  # a 404 is routine: no line at all, no traceback


def test_names_no_file_can_have_are_refused_before_any_system_call(web_dir: Path) -> None:
    files = WebFiles(web_dir)
    assert files.find("sub/app.js") == (web_dir / "sub" / "app.js").resolve()
    assert files.find("\udc80") is None  # a lone surrogate: a server that decodes with surrogateescape
    assert files.find("a\0b") is None
    assert files.find("/etc/passwd") is None
