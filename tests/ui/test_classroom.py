"""The classroom front's pure parts: the secure-context rule, the Caddyfile, the address file, the QR code."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest
from PIL import Image

from tl_ui import classroom


@pytest.mark.parametrize(("headers", "blocked"), [
    ({"Host": "10.0.0.5:8501"}, "10.0.0.5:8501"),  # a student at the teacher's address over plain http
    ({"host": "classroom.test:8501"}, "classroom.test:8501"),
    ({"Host": "10.0.0.5:8443", "X-Forwarded-Proto": "https"}, None),  # behind `make class`
    ({"Host": "localhost:8501"}, None),  # the teacher's own machine: browsers allow it
    ({"Host": "127.0.0.1:8501"}, None),
    ({"Host": "[::1]:8501"}, None),
    ({"Host": "app.localhost"}, None),
    ({}, None),  # unknown (a test harness): the camera widget decides
])
def test_camera_needs_https_or_localhost(headers, blocked):
    assert classroom.camera_blocked(headers) == blocked


def test_camera_message_says_how_to_get_https():
    text = classroom.camera_message("10.0.0.5:8501")
    assert "http://10.0.0.5:8501" in text and "https" in text and "make class" in text


def test_caddyfile_serves_static_files_and_proxies_the_rest(tmp_path):
    text = classroom.caddyfile(["192.168.1.20"], 8443, 51000, tmp_path / "caddy", tmp_path / "static")
    assert "https://192.168.1.20:8443, https://localhost:8443, https://127.0.0.1:8443, https://[::1]:8443" in text
    assert "tls internal" in text and "skip_install_trust" in text
    assert f'root "{tmp_path / "caddy"}"' in text  # the authority and certificates stay in the data folder
    assert f'root * "{tmp_path / "static"}"' in text and "handle /static/*" in text
    assert "reverse_proxy 127.0.0.1:51000" in text


def test_site_url():
    assert classroom.site_url("10.0.0.5", 8443) == "https://10.0.0.5:8443"
    assert classroom.site_url("fe80::1", 443) == "https://[fe80::1]"


def test_address_file_only_while_the_launcher_runs(tmp_path):
    assert classroom.read_info(tmp_path) is None
    png = classroom.write_info("https://10.0.0.5:8443", tmp_path)
    url, data = classroom.read_info(tmp_path)
    assert url == "https://10.0.0.5:8443" and data == png.read_bytes()
    assert Image.open(io.BytesIO(data)).size[0] > 200  # a QR code big enough for a projector
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / classroom.INFO_FILE).write_text(json.dumps({"url": url, "pid": dead.pid}))
    assert classroom.read_info(tmp_path) is None  # a stopped class is not shown
    (tmp_path / classroom.INFO_FILE).write_text("{not json")
    assert classroom.read_info(tmp_path) is None
    (tmp_path / classroom.INFO_FILE).write_text(json.dumps({"url": url, "pid": os.getpid()}))
    classroom.clear_info(tmp_path)
    assert classroom.read_info(tmp_path) is None


def test_qr_text_is_a_square_of_blocks():
    lines = classroom.qr_text("https://10.0.0.5:8443").splitlines()
    assert len(lines) > 10 and all("█" in line or "▀" in line or "▄" in line for line in lines)


def test_precompressed_static_copy_is_made_once(tmp_path):
    import gzip

    src = tmp_path / "static"
    (src / "static" / "js").mkdir(parents=True)
    (src / "index.html").write_text("<html>" + "x" * 1000)
    (src / "static" / "js" / "a.js").write_text("let a = 1;" * 200)
    (src / "static" / "f.woff2").write_bytes(b"\x00" * 50)
    dst = classroom.precompressed_static(src, tmp_path / "class", "1.0")
    assert gzip.decompress((dst / "static" / "js" / "a.js.gz").read_bytes()) == (src / "static/js/a.js").read_bytes()
    assert (dst / "index.html.gz").exists() and not (dst / "static" / "f.woff2.gz").exists()
    (dst / "marker").touch()
    assert classroom.precompressed_static(src, tmp_path / "class", "1.0") == dst and (dst / "marker").exists()
    assert classroom.precompressed_static(src, tmp_path / "class", "2.0").name == "static-2.0"  # a new Streamlit


def test_about_page_shows_the_class_address_and_qr_code_while_make_class_runs(tmp_path, monkeypatch):
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    page = str(Path(__file__).resolve().parents[2] / "pages" / "about.py")
    monkeypatch.setenv("TL_RACE_DATA", str(tmp_path))
    at = AppTest.from_file(page, default_timeout=30).run()
    assert not at.exception and "Join this class" not in [s.value for s in at.subheader]
    classroom.write_info("https://10.0.0.5:8443")  # as the running launcher (this process) does
    at = AppTest.from_file(page, default_timeout=30).run()
    assert "Join this class" in [s.value for s in at.subheader]
    assert any("https://10.0.0.5:8443" in m.value for m in at.markdown)
    assert at.get("image") and at.get("image")[0].proto.imgs[0].caption == "https://10.0.0.5:8443"  # the QR code


def test_launcher_without_caddy_says_which_apt_command(tmp_path):
    """No Caddy on the PATH: one line naming the Debian package and the command, exit code 2, nothing started."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {"PATH": str(tmp_path), "TL_RACE_DATA": str(tmp_path / "data"), "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, str(root / "scripts" / "class_server.py")], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "apt-get install -y caddy" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "data" / "class").exists()
