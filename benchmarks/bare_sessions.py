"""Page loads without a browser: what a class costs the *server* when each browser is on its own laptop.

On one 2-core machine, 20 Chromium contexts loading the race page at once spend ~4.7 s of CPU each (``bench_load``:
93.8 s for 20 loads, the server 4.8 s): the browsers, not the server, then decide how long a load takes. This
client does only what a browser asks of the server, with no rendering:

1. GET every static file a real Chromium fetched for the page (recorded once by :func:`record_assets`);
2. open the websocket (``/_stcore/stream``), ask for a script run (a ``rerun_script`` BackMsg, as the frontend
   sends), and read ForwardMsgs until ``script_finished``;
3. GET the media files (images) the script's messages point to.

A session's time runs from its first request to its last media file. Many sessions run at once in one asyncio
loop, so the client's own CPU is small next to the server's (both are reported). An ``https://`` base (`make
class`: Caddy in front of Streamlit) is fetched over TLS with :data:`TLS` (each connection's handshake included,
as a first visit pays it), the websocket as ``wss://``.
"""

from __future__ import annotations

import asyncio
import http.client
import re
import ssl
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

MEDIA = re.compile(rb"/media/[0-9a-f]{20,}\.[a-z0-9]{2,5}")
CONNECTIONS = 6  # a browser's parallel HTTP/1.1 connections to one host
# Set to a context that trusts the front server's certificate (or one that checks nothing) for https bases.
TLS: ssl.SSLContext | None = None


async def record_assets(browser, url: str) -> list[str]:
    """Paths of the static files a real page load fetched (the app's HTML, JS, CSS, fonts), media excluded."""
    ctx = await browser.new_context()
    page = await ctx.new_page()
    seen: list[str] = []
    host = urlsplit(url).netloc
    page.on("request", lambda r: seen.append(r.url))
    await page.goto(url)
    await page.get_by_role("button", name="▷ Train all three").wait_for(timeout=120_000)
    await page.wait_for_timeout(1000)
    await ctx.close()
    paths = [urlsplit(u).path for u in seen if urlsplit(u).netloc == host]
    return list(dict.fromkeys(p for p in paths if not p.startswith(("/media/", "/_stcore/stream"))))


def return_visit(assets: list[str]) -> list[str]:
    """What a browser with a warm cache asks for again: Streamlit serves ``/static/`` files (hashed names) as
    ``immutable`` for a year, so only the page itself and the ``/_stcore/`` calls."""
    return [p for p in assets if not p.startswith("/static/")]


def _get_many(base: str, paths: list[str]) -> int:
    """Bytes of ``paths``, fetched one after another over one keep-alive connection (as a browser does)."""
    netloc = urlsplit(base).netloc
    conn = (http.client.HTTPSConnection(netloc, timeout=120, context=TLS) if base.startswith("https://")
            else http.client.HTTPConnection(netloc, timeout=120))
    got = 0
    try:
        for p in paths:
            conn.request("GET", p, headers={"Accept-Encoding": "gzip"})
            got += len(conn.getresponse().read())
    finally:
        conn.close()
    return got


async def _fetch_all(base: str, paths: list[str]) -> int:
    """``paths`` over :data:`CONNECTIONS` parallel connections, like a browser's."""
    shares = [paths[i::CONNECTIONS] for i in range(CONNECTIONS)]
    return sum(await asyncio.gather(*(asyncio.to_thread(_get_many, base, s) for s in shares if s)))


async def session(base: str, assets: list[str], query: str, timeout: float = 300) -> dict:
    """One page load as the server sees it; seconds to the script's end and to the last media file."""
    import websockets
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    t0 = time.perf_counter()
    static_bytes = await _fetch_all(base, assets)
    t_static = time.perf_counter() - t0
    media: set[bytes] = set()
    ws_url = base.replace("https://", "wss://").replace("http://", "ws://") + "/_stcore/stream"
    tls = {"ssl": TLS} if ws_url.startswith("wss://") else {}
    async with websockets.connect(ws_url, subprotocols=["streamlit"], max_size=2**28, open_timeout=timeout,
                                  **tls) as ws:
        msg = BackMsg()
        msg.rerun_script.query_string = query.lstrip("?")
        msg.rerun_script.page_script_hash = ""
        await ws.send(msg.SerializeToString())
        while True:
            raw = await asyncio.wait_for(ws.recv(), timeout)
            media.update(MEDIA.findall(raw))
            fwd = ForwardMsg()
            fwd.ParseFromString(raw)
            if fwd.WhichOneof("type") == "script_finished":
                break
        t_script = time.perf_counter() - t0
    media_bytes = await _fetch_all(base, [m.decode() for m in sorted(media)])
    return {"static_seconds": t_static, "script_seconds": t_script, "seconds": time.perf_counter() - t0,
            "static_files": len(assets), "static_bytes": static_bytes, "media_files": len(media),
            "media_bytes": media_bytes}


async def many(base: str, assets: list[str], queries: list[str]) -> list[dict]:
    """``len(queries)`` sessions started at once; a failed one is recorded with its error."""
    # Each session's connections in their own threads (asyncio's default pool has only cores + 4).
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(CONNECTIONS * len(queries)))

    async def guarded(q: str) -> dict:
        try:
            return await session(base, assets, q)
        except Exception as e:  # a load that fails is a result, not a crash
            return {"seconds": None, "error": f"{type(e).__name__}: {str(e)[:200]}"}

    return await asyncio.gather(*(guarded(q) for q in queries))
