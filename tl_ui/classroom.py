"""The classroom front: what `make class` puts in front of Streamlit, and what a page needs to know about it.

Browsers give a page the camera only in a *secure context*: https, or the machine itself (localhost). Students
open the app from their own laptops at the teacher's network address, so plain http leaves them without a
camera. `make class` (``scripts/class_server.py``) therefore runs Streamlit on 127.0.0.1 only and Caddy, a web
server from Debian, in front of it on the network: https with a certificate from Caddy's own local authority
(made on first run, kept under the data folder), Streamlit's static files served by Caddy straight from the
installed package (a copy with the text files gzipped once), everything else (the websocket included) proxied
to Streamlit.

Helpers (Streamlit only inside :func:`camera_input`): the Caddyfile, the machine's address, the QR code, the
address file the About page reads, and the secure-context test the camera widgets use.
"""

from __future__ import annotations

import io
import ipaddress
import json
import os
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path

from tl_engine.store.results import DATA_ENV, REPO

CLASS_DIR = "class"  # under the data folder: Caddy's storage (its local CA, certificates) and the address file
INFO_FILE = "address.json"
QR_FILE = "address.png"
LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")


def data_dir() -> Path:
    """``$TL_RACE_DATA``, else ``data/`` in the repository (where the results store lives too)."""
    return Path(os.environ.get(DATA_ENV) or REPO / "data")


def class_dir() -> Path:
    return data_dir() / CLASS_DIR


def streamlit_static() -> Path:
    """The installed Streamlit's ``static`` folder (index.html, and ``static/js``, ``static/css``, ...)."""
    import streamlit

    return Path(streamlit.__file__).resolve().parent / "static"


COMPRESS = (".js", ".css", ".svg", ".json", ".html", ".map", ".txt")  # woff2 and png are compressed already


def precompressed_static(src: Path, root: Path, version: str) -> Path:
    """A copy of Streamlit's static folder with a ``.gz`` beside each text file, made once per Streamlit version
    under ``root``: Caddy then sends those bytes as they are instead of compressing ~3 MB for every first visit.
    Built in a temporary folder and renamed, so a half-made copy is never served."""
    import gzip
    import shutil

    dst = root / f"static-{version}"
    if (dst / ".ready").exists():
        return dst
    tmp = root / f".static-{version}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp)
    for f in tmp.rglob("*"):
        if f.suffix in COMPRESS and f.is_file():
            f.with_name(f.name + ".gz").write_bytes(gzip.compress(f.read_bytes(), 9, mtime=0))
    (tmp / ".ready").touch()
    shutil.rmtree(dst, ignore_errors=True)
    tmp.rename(dst)
    return dst


def lan_address() -> str:
    """This machine's address on its network (the one a default route leaves from), else 127.0.0.1.

    A UDP "connect" sends nothing: it only asks the kernel which local address would be used.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.254.254.254", 9))
            return s.getsockname()[0]
        except OSError:
            return "127.0.0.1"


def site_url(host: str, port: int) -> str:
    """``https://host:port`` (an IPv6 address in brackets; the port left out when it is 443)."""
    try:
        if ipaddress.ip_address(host).version == 6:
            host = f"[{host}]"
    except ValueError:
        pass
    return f"https://{host}" + ("" if port == 443 else f":{port}")


def caddyfile(hosts: Sequence[str], port: int, upstream_port: int, storage: Path, static: Path) -> str:
    """Caddy's configuration: https on ``port`` for every name in ``hosts`` (plus localhost), certificates from
    Caddy's internal authority kept in ``storage``, ``/static/*`` from ``static`` (hashed file names: cached for
    a year, as Streamlit does), everything else to Streamlit on 127.0.0.1:``upstream_port``."""
    names = list(dict.fromkeys([*hosts, *LOCAL_NAMES]))
    sites = ", ".join(site_url(h, port) for h in names)
    return f"""{{
	admin off
	auto_https disable_redirects
	skip_install_trust
	local_certs
	storage file_system {{
		root "{storage}"
	}}
	log {{
		level WARN
	}}
}}

{sites} {{
	tls internal
	encode zstd gzip
	handle /static/* {{
		root * "{static}"
		header Cache-Control "public, max-age=31536000, immutable"
		file_server {{
			precompressed gzip
		}}
	}}
	handle {{
		reverse_proxy 127.0.0.1:{upstream_port}
	}}
}}
"""


def root_certificate(storage: Path) -> Path:
    """Where Caddy keeps its local authority's root certificate (what a student's browser warns about)."""
    return storage / "pki" / "authorities" / "local" / "root.crt"


def qr_png(text: str) -> bytes:
    """A QR code of ``text`` as PNG bytes (big modules: readable from the back of a room on a projector)."""
    import qrcode

    img = qrcode.make(text, box_size=12, border=3)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def qr_text(text: str) -> str:
    """The same QR code drawn with block characters, for the terminal."""
    import qrcode

    qr = qrcode.QRCode(border=2)
    qr.add_data(text)
    out = io.StringIO()
    qr.print_ascii(out=out, invert=True)
    return out.getvalue()


def write_info(url: str, folder: Path | None = None) -> Path:
    """Record the class address (and its QR code as PNG) for the About page; returns the PNG's path."""
    folder = folder or class_dir()
    folder.mkdir(parents=True, exist_ok=True)
    png = folder / QR_FILE
    png.write_bytes(qr_png(url))
    (folder / INFO_FILE).write_text(json.dumps({"url": url, "pid": os.getpid()}))
    return png


def clear_info(folder: Path | None = None) -> None:
    folder = folder or class_dir()
    for name in (INFO_FILE, QR_FILE):
        (folder / name).unlink(missing_ok=True)


def read_info(folder: Path | None = None) -> tuple[str, bytes] | None:
    """(address, QR PNG) while `make class` runs; None otherwise (no file, a damaged one, or a dead server)."""
    folder = folder or class_dir()
    try:
        info = json.loads((folder / INFO_FILE).read_text())
        url, pid = str(info["url"]), int(info["pid"])
        png = (folder / QR_FILE).read_bytes()
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        os.kill(pid, 0)  # the launcher that wrote it still runs
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # it runs, as another user
    return url, png


# ---- the camera's secure context ---------------------------------------------------------------------------

def _host_name(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):  # [::1]:8501
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def camera_blocked(headers: Mapping[str, str]) -> str | None:
    """The host a page was opened at when the browser will refuse it the camera (plain http, not localhost);
    None when the camera is allowed, or when the request is unknown (no headers: e.g. a test harness).

    Behind `make class`, Caddy tells Streamlit the browser's scheme in ``X-Forwarded-Proto``.
    """
    low = {k.lower(): v for k, v in headers.items()}
    host = low.get("host", "")
    if not host or low.get("x-forwarded-proto", "").split(",")[0].strip().lower() == "https":
        return None
    name = _host_name(host)
    if name in LOCAL_NAMES or name.endswith(".localhost") or name.startswith("127."):
        return None
    return host


def camera_message(host: str) -> str:
    """What a student reads instead of a camera that the browser would keep grey."""
    return (f"**No camera here: this page was opened over plain http** (`http://{host}`), and browsers give a "
            "page the camera only over **https** (or on the machine itself, at localhost). Ask your teacher for "
            "the https address: `make class` prints it with a QR code, and the About page shows it too. Until "
            "then, drop image files instead.")


def camera_input(label: str, key: str, where=None):
    """``st.camera_input`` where the browser allows the camera; elsewhere the message why not and how to get it
    (instead of a grey box), and None."""
    import streamlit as st

    try:
        headers = dict(st.context.headers)
    except Exception:  # noqa: BLE001 (no request to read: a test harness; the camera widget decides)
        headers = {}
    host = camera_blocked(headers)
    if host is not None:
        (where or st).warning(camera_message(host), icon=":material/no_photography:")
        return None
    return (where or st).camera_input(label, key=key)
