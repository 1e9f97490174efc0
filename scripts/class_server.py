"""`make class`: the app for a room. Streamlit on 127.0.0.1 behind Caddy, which serves https on the network.

    python scripts/class_server.py [--port 8443] [--host NAME ...] [--streamlit-port N]

Prints the address and a QR code (also shown on the About page), then runs until Ctrl-C (or SIGTERM), which
stops both processes. The certificate comes from Caddy's local authority, made on the first run and kept in
``$TL_RACE_DATA/class/caddy`` (default ``data/class/caddy``); students' browsers warn about it once (README).
Why https at all, and the Caddyfile: :mod:`tl_ui.classroom`.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tl_ui import classroom  # noqa: E402  (after the path: run as a script from anywhere)

APT = "sudo apt-get install -y caddy"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ok(url: str, procs: list[subprocess.Popen], seconds: float, context: ssl.SSLContext | None = None) -> None:
    """Until ``url`` answers "ok"; raises if a process died or time ran out."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if urllib.request.urlopen(url, timeout=2, context=context).read() == b"ok":
                return
        except OSError:
            pass
        dead = [p for p in procs if p.poll() is not None]
        if dead or time.monotonic() > deadline:
            why = (f"{Path(dead[0].args[0]).name} exited with code {dead[0].returncode}" if dead
                   else f"no answer after {seconds:.0f} s")
            raise RuntimeError(f"{url}: {why}")
        time.sleep(0.3)


def stop(procs: list[subprocess.Popen]) -> None:
    """SIGTERM to each, then SIGKILL to any still running after 10 s."""
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=8443, help="the https port students open (default 8443)")
    ap.add_argument("--host", action="append", default=[],
                    help="a name or address students use (repeatable; default: this machine's network address)")
    ap.add_argument("--streamlit-port", type=int, default=0, help="Streamlit's own port on 127.0.0.1 (default: free)")
    a = ap.parse_args()
    caddy = shutil.which("caddy")
    if caddy is None:
        print(f"make class needs the web server Caddy (Debian package `caddy`): {APT}", file=sys.stderr)
        return 2
    hosts = a.host or [classroom.lan_address()]
    url = classroom.site_url(hosts[0], a.port)
    sport = a.streamlit_port or free_port()
    folder = classroom.class_dir()
    storage = folder / "caddy"
    storage.mkdir(parents=True, exist_ok=True)
    conf = folder / "Caddyfile"
    version = importlib.metadata.version("streamlit")
    if not (folder / f"static-{version}" / ".ready").exists():
        print(f"First run with Streamlit {version}: copying and gzipping its static files for Caddy…", flush=True)
    static = classroom.precompressed_static(classroom.streamlit_static(), folder, version)
    conf.write_text(classroom.caddyfile(hosts, a.port, sport, storage, static))
    env_home = {"XDG_DATA_HOME": str(folder / "xdg-data"), "XDG_CONFIG_HOME": str(folder / "xdg-config"),
                "HOME": str(folder)}  # Caddy writes nothing outside the class folder

    procs: list[subprocess.Popen] = []
    # Both processes' own output goes to a file (closed in finally): the terminal shows only what to do.
    log = open(folder / "server.log", "w")  # noqa: SIM115

    def on_signal(signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        # Their own sessions: Ctrl-C reaches this script only, which then stops both in order.
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", "127.0.0.1",
             "--server.port", str(sport), "--server.headless", "true", "--browser.gatherUsageStats", "false"],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        procs.append(subprocess.Popen([caddy, "run", "--config", str(conf), "--adapter", "caddyfile"], cwd=folder,
                                      env={**os.environ, **env_home}, stdout=log, stderr=subprocess.STDOUT,
                                      start_new_session=True))
        wait_ok(f"http://127.0.0.1:{sport}/_stcore/health", procs, 120)
        root = classroom.root_certificate(storage)
        deadline = time.monotonic() + 60
        while not root.exists() and time.monotonic() < deadline:  # Caddy makes its authority on the first run
            time.sleep(0.2)
        ctx = ssl.create_default_context(cafile=str(root))
        wait_ok(f"https://localhost:{a.port}/_stcore/health", procs, 60, ctx)
        png = classroom.write_info(url)
        print(classroom.qr_text(url))
        print(f"Students open: {url}   (QR code above; also on the About page and in {png})")
        print("Their browser warns once about the certificate: Advanced, then Proceed (README).")
        print(f"Certificate authority: {root}.  Stop with Ctrl-C.", flush=True)
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        dead = next(p for p in procs if p.poll() is not None)
        print(f"{Path(dead.args[0]).name} stopped (exit code {dead.returncode}; see {log.name}); stopping the other.",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Stopping Caddy and Streamlit…", flush=True)
        return 0
    except RuntimeError as e:
        print(f"make class could not start: {e} (their output: {log.name})", file=sys.stderr)
        return 1
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C must not leave a process behind
            signal.signal(sig, signal.SIG_IGN)
        stop(list(reversed(procs)))
        log.close()
        classroom.clear_info()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


if __name__ == "__main__":
    sys.exit(main())
