"""The label server: a small web app where people answer the human teacher's queries."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import json
import logging
import math
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from feedbackgym.errors import ConfigError
from feedbackgym.feedback.label_queue import ANSWERS, QUERY_ID, LabelQueue

#: Largest answer body accepted (an answer is about 60 bytes).
MAX_BODY = 4096
#: Longest token accepted (``secrets.token_urlsafe(32)`` is 43 characters).
MAX_TOKEN = 128
#: The cookie that carries the token after the link's first visit (HttpOnly, SameSite=Strict).
COOKIE = "feedbackgym_token"
#: Seconds a connection may stay open without a complete request (from its opening or its
#: last response), and that a request body may take to arrive.
IDLE_TIMEOUT = 10.0
#: One line per failed write of the label folder (a full or read-only disk).
LOG = logging.getLogger(__name__)


class _AnnotatorsUnreadable(Exception):
    """annotators.json cannot be read as tokens (a request is then answered 503)."""


#: Every response: no framing, no sniffing, no referrer (the link holds the token), no
#: caching, and only this server's own scripts, styles and images.
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
        b"form-action 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>feedbackgym: which clip is better?</title>
<link rel="stylesheet" href="/label.css"></head>
<body>
<header><h1>Which clip is better?</h1>
<p>Watch both clips (they loop), then choose. Keys: <kbd>1</kbd> or <kbd>&larr;</kbd> left,
<kbd>2</kbd> or <kbd>&rarr;</kbd> right, <kbd>3</kbd> equal, <kbd>0</kbd> can't tell.</p>
<p class="counts">Signed in as <b id="annotator">?</b> &middot; answered here:
<b id="done">0</b> &middot; waiting: <b id="open">0</b></p></header>
<main>
<section id="pair" hidden>
<figure><img id="clip-a" alt="clip A"><figcaption>A (left)</figcaption></figure>
<figure><img id="clip-b" alt="clip B"><figcaption>B (right)</figcaption></figure>
</section>
<p id="waiting" hidden>No query is waiting. This page looks again every 2 seconds.</p>
<nav id="buttons">
<button id="btn-a" data-answer="a" disabled>A is better</button>
<button id="btn-equal" data-answer="equal" disabled>Equally good</button>
<button id="btn-skip" data-answer="skip" disabled>Can't tell</button>
<button id="btn-b" data-answer="b" disabled>B is better</button>
</nav>
<p id="status" role="status"></p>
</main>
<script src="/label.js"></script>
</body></html>
"""

FORBIDDEN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>feedbackgym: no access</title></head>
<body><h1>This link is not valid</h1>
<p>Open the personal link (ending in <code>?token=...</code>) you were given.</p></body></html>
"""

CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5rem auto; max-width: 60rem; color: #222; }
h1 { margin: 0 0 .3rem; font-size: 1.5rem; }
header p { margin: .2rem 0; color: #555; }
#pair { display: flex; gap: 1.5rem; justify-content: center; margin: 1.2rem 0; }
figure { margin: 0; text-align: center; }
figure img { width: 256px; height: 256px; border: 3px solid #ccc; border-radius: 6px;
  background: #fff; image-rendering: auto; }
figcaption { font-weight: 600; margin-top: .3rem; }
nav { display: flex; gap: .8rem; justify-content: center; }
button { font-size: 1.05rem; padding: .6rem 1.1rem; border-radius: 6px; border: 1px solid #888;
  background: #f4f4f4; cursor: pointer; }
button:disabled { opacity: .45; cursor: default; }
#btn-a, #btn-b { background: #dbeafe; border-color: #3b82f6; }
#waiting, #status { text-align: center; color: #555; min-height: 1.4em; }
kbd { border: 1px solid #bbb; border-radius: 3px; padding: 0 .3em; background: #f7f7f7; }
"""

SCRIPT = """"use strict";
// The link's token now rides in an HttpOnly cookie the page set: take it out of the address
// bar and the history, so it is not bookmarked, shared, or sent again in a URL.
if (location.search) history.replaceState(null, "", location.pathname);
const $ = (id) => document.getElementById(id);
let current = null;
let busy = false;

function setButtons(on) {
  for (const b of document.querySelectorAll("button[data-answer]")) b.disabled = !on;
}
function say(text) { $("status").textContent = text; }

async function next() {
  let r;
  try { r = await fetch("/api/next", {credentials: "same-origin", cache: "no-store"}); }
  catch (e) { say("The server cannot be reached; trying again."); setTimeout(next, 2000); return; }
  if (!r.ok) {
    say(`The server refused this page (${r.status}): open your personal link again.`);
    setButtons(false); return;
  }
  const data = await r.json();
  $("annotator").textContent = data.annotator;
  $("open").textContent = data.open;
  $("done").textContent = data.answered_by_you;
  if (!data.query) {
    current = null;
    $("pair").hidden = true; $("waiting").hidden = false; setButtons(false);
    setTimeout(next, 2000);
    return;
  }
  current = data.query;
  $("clip-a").src = `/clips/${current}/a`;
  $("clip-b").src = `/clips/${current}/b`;
  $("pair").dataset.query = current;
  $("pair").hidden = false; $("waiting").hidden = true; setButtons(true);
}

async function answer(choice) {
  if (!current || busy) return;
  busy = true; setButtons(false);
  try {
    const r = await fetch("/api/answer", {
      method: "POST",
      credentials: "same-origin",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify({id: current, answer: choice}),
    });
    if (r.ok) { say("Saved."); await next(); }
    else if (r.status === 409 || r.status === 404) {
      say("Someone else answered (or is answering) that one."); await next();
    }
    else { say(`Not saved (${r.status}); please try again.`); setButtons(true); }
  } catch (e) {
    say("The server cannot be reached: that answer was not saved; please try again.");
    setButtons(true);
  } finally { busy = false; }
}

for (const b of document.querySelectorAll("button[data-answer]")) {
  b.addEventListener("click", () => answer(b.dataset.answer));
}
const keys = {"1": "a", "ArrowLeft": "a", "2": "b", "ArrowRight": "b", "3": "equal", "0": "skip"};
document.addEventListener("keydown", (e) => { if (keys[e.key]) answer(keys[e.key]); });
next();
"""


class _SecurityHeaders:
    """ASGI middleware adding :data:`SECURITY_HEADERS` to every response."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + SECURITY_HEADERS
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _starlette() -> Any:
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise ConfigError(
            "the label server needs the 'human' extra: pip install 'feedbackgym[human]'"
        ) from None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


def check_host(host: Any, warn: bool = False) -> str:
    """The address to listen on, checked: an empty one (which binds every interface) is
    refused in one line; with ``warn``, an address other than loopback gets one line on
    stderr (the page is plain HTTP and reachable from other machines)."""
    if not isinstance(host, str) or not host.strip():
        raise ConfigError(
            f"host {host!r} would listen on every interface: give one address, 127.0.0.1 "
            "(this machine only, the default) or an interface's (0.0.0.0: every interface; "
            "put a TLS proxy in front)"
        )
    if warn and not _is_loopback(host):
        print(
            f"feedbackgym label: warning: listening on {host}, not loopback: other machines "
            "can reach this plain-HTTP page; put a TLS proxy or an SSH tunnel in front",
            file=sys.stderr,
            flush=True,
        )
    return host


def _http_protocol(idle_timeout: float) -> type:
    """uvicorn's HTTP protocol, closing a connection that brings no complete request within
    ``idle_timeout`` seconds of its opening or of its last response: uvicorn only times out
    the wait between two requests, so a client that connects and sends nothing (or half a
    request line) would hold a connection forever."""
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    class IdleTimeoutProtocol(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
        _idle_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm_idle_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._idle_timer is not None:
                self._idle_timer.cancel()
                self._idle_timer = None
            super().connection_lost(exc)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm_idle_timer()

        def _arm_idle_timer(self) -> None:
            if self._idle_timer is not None:
                self._idle_timer.cancel()
            self._idle_timer = self.loop.call_later(idle_timeout, self._on_idle)

        def _on_idle(self) -> None:
            self._idle_timer = None
            if self.cycle is not None and not self.cycle.response_complete:
                self._arm_idle_timer()  # a request is being answered (its body has a timeout)
            elif not self.transport.is_closing():
                self.transport.close()

    return IdleTimeoutProtocol


def make_app(
    root: str | Path,
    lease_seconds: float = 60.0,
    max_body: int = MAX_BODY,
    idle_timeout: float = IDLE_TIMEOUT,
) -> Any:
    """The label server of the label folder ``root`` as an ASGI (Starlette) app.

    ``GET /?token=T`` is the page (the link an annotator is given): it sets the token as an
    HttpOnly, SameSite=Strict cookie, and the page then takes it out of the address bar, so
    no later URL carries it. ``GET /api/next`` gives the next open query for the annotator
    (one not lent to another annotator in the last ``lease_seconds``); ``GET
    /clips/<id>/<a|b>`` a clip; ``POST /api/answer`` with ``{"id": ..., "answer": "a" | "b" |
    "equal" | "skip"}`` records an answer on disk before it replies. The token comes as the
    cookie or ``Authorization: Bearer T``; ``?token=T`` is read on ``GET /`` only. Refused:
    no or unknown token (403), an unknown id or a clip that is not a regular file in
    ``clips/`` (404), an answered or withdrawn query, or one lent to another annotator
    (409), a body that is not such JSON (400), is larger than ``max_body`` bytes (413) or
    takes more than ``idle_timeout`` seconds to arrive (408). A label folder that is full
    (507) or cannot be written (503) gets a JSON error and one log line, and so does an
    ``annotators.json`` that is not a JSON map of names to token hashes (503). No other path reads
    a file.
    """
    _starlette()
    if not idle_timeout > 0:
        raise ConfigError(f"idle_timeout must be > 0 seconds, got {idle_timeout!r}")
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse, Response
    from starlette.routing import Route

    queue = LabelQueue(root)
    lock = threading.Lock()
    leases: dict[str, tuple[str, float]] = {}  # query id -> (annotator, lent until)
    shown: dict[str, float] = {}  # query id -> when its current holder was first shown it
    answered_here: dict[str, int] = {}
    tokens: dict[str, Any] = {"key": None, "hashes": {}}

    def token_of(request: Request, from_link: bool = False) -> str:
        if from_link and "token" in request.query_params:
            return request.query_params["token"]  # the link itself: it wins over a cookie
        header = request.headers.get("authorization", "")
        token = header[7:] if header[:7].lower() == "bearer " else ""
        return token or request.cookies.get(COOKIE, "")

    def who(request: Request, token: str | None = None) -> str | None:
        token = token_of(request) if token is None else token
        if not token or len(token) > MAX_TOKEN:
            return None
        path = queue.root / "annotators.json"
        try:
            stat = path.stat()
        except FileNotFoundError:
            return None
        # Tokens added or reissued by `feedbackgym label` replace the file (a new inode): a
        # reissue within one mtime tick is seen too. The ctime no one can set catches the rest.
        key = (stat.st_ino, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_size)
        if key != tokens["key"]:
            try:
                hashes = queue._annotator_hashes()
            except ConfigError as err:  # not cached: reread until the file is fixed
                raise _AnnotatorsUnreadable(str(err)) from None
            tokens["hashes"], tokens["key"] = hashes, key
        return queue.annotator_for(token, tokens["hashes"])

    def refuse(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    async def page(request: Request) -> Response:
        token = token_of(request, from_link=True)
        if who(request, token) is None:
            return HTMLResponse(FORBIDDEN_PAGE, status_code=403)
        response = HTMLResponse(PAGE)
        response.set_cookie(
            COOKIE,
            token,
            path="/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",  # behind a TLS proxy
        )
        return response

    async def script(request: Request) -> Response:
        return Response(SCRIPT, media_type="text/javascript")

    async def style(request: Request) -> Response:
        return Response(CSS, media_type="text/css")

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True})

    def pick(annotator: str) -> tuple[str | None, int]:
        open_ids = queue.open_queries()
        now = time.monotonic()
        with lock:
            for qid in open_ids:
                holder, until = leases.get(qid, (annotator, 0.0))
                # Answered since open_queries() looked? (An answer is on disk before its lease
                # is dropped, so this check under the lock cannot miss one.)
                if (holder == annotator or until < now) and not queue.is_closed(qid):
                    leases[qid] = (annotator, now + lease_seconds)
                    if holder != annotator or until < now or qid not in shown:
                        shown[qid] = now  # when this annotator was first shown it
                    return qid, len(open_ids)
        return None, len(open_ids)

    async def next_query(request: Request) -> Response:
        annotator = who(request)
        if annotator is None:
            return refuse(403, "missing or unknown token")
        qid, n_open = await run_in_threadpool(pick, annotator)
        return JSONResponse(
            {
                "query": qid,
                "open": n_open,
                "annotator": annotator,
                "answered_by_you": answered_here.get(annotator, 0),
            }
        )

    async def clip(request: Request) -> Response:
        if who(request) is None:
            return refuse(403, "missing or unknown token")
        qid, side = request.path_params["qid"], request.path_params["side"]
        data = await run_in_threadpool(queue.read_clip, qid, side)
        if data is None:
            return refuse(404, "no such clip")
        return Response(data, media_type="image/gif")

    async def read_body(request: Request) -> bytes | None:
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_body:
                return None
        return bytes(body)

    async def answer(request: Request) -> Response:
        annotator = who(request)
        if annotator is None:
            return refuse(403, "missing or unknown token")
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > max_body):
            return refuse(413, f"body larger than {max_body} bytes")
        try:
            body = await asyncio.wait_for(read_body(request), idle_timeout)
        except asyncio.TimeoutError:
            return refuse(408, f"body not received within {idle_timeout:g} s")
        if body is None:
            return refuse(413, f"body larger than {max_body} bytes")
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nesting
            return refuse(400, "body must be JSON")
        if (
            not isinstance(data, dict)
            or set(data) != {"id", "answer"}
            or not isinstance(data["id"], str)
            or not isinstance(data["answer"], str)
            or data["answer"] not in ANSWERS
        ):
            return refuse(400, 'body must be {"id": "<query id>", "answer": "a|b|equal|skip"}')
        qid = data["id"]
        if not QUERY_ID.fullmatch(qid) or not queue.is_query(qid):
            return refuse(404, "unknown query")
        now = time.monotonic()
        with lock:
            holder, until = leases.get(qid, (annotator, 0.0))
            if holder != annotator and until >= now:
                return refuse(
                    409,
                    f"query lent to another annotator for {math.ceil(until - now)} s more: "
                    "answer the one /api/next gives you",
                )
            since = shown.get(qid) if holder == annotator else None
        took = None if since is None else round(now - since, 3)
        written = await run_in_threadpool(queue.answer, qid, data["answer"], annotator, took)
        with lock:
            leases.pop(qid, None)
            shown.pop(qid, None)
            if written:
                answered_here[annotator] = answered_here.get(annotator, 0) + 1
        if not written:
            return refuse(409, "query already answered or withdrawn")
        return JSONResponse({"ok": True})

    async def storage_error(request: Request, exc: Exception) -> Response:
        # A full or read-only disk: say so in JSON, log one line, keep serving.
        err = exc if isinstance(exc, OSError) else OSError(str(exc))
        full = err.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
        LOG.error(
            "label folder %s: %s %s failed: %s",
            queue.root,
            request.method,
            request.url.path,
            err.strerror or err,
        )
        if full:
            return refuse(507, f"the label folder is full ({err.strerror}): nothing was saved")
        return refuse(
            503, f"the label folder cannot be written or read ({err.strerror}): nothing was saved"
        )

    async def annotators_error(request: Request, exc: Exception) -> Response:
        # A hand-edited or half-copied annotators.json: say so in JSON, log one line.
        LOG.error("label folder %s: %s %s: %s", queue.root, request.method, request.url.path, exc)
        return refuse(503, f"annotators file unreadable: {exc}")

    routes = [
        Route("/", page),
        Route("/label.js", script),
        Route("/label.css", style),
        Route("/healthz", health),
        Route("/api/next", next_query),
        Route("/api/answer", answer, methods=["POST"]),
        Route("/clips/{qid}/{side}", clip),
    ]
    return _SecurityHeaders(
        Starlette(
            routes=routes,
            exception_handlers={OSError: storage_error, _AnnotatorsUnreadable: annotators_error},
        )
    )


def serve(
    root: str | Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    lease_seconds: float = 60.0,
    idle_timeout: float = IDLE_TIMEOUT,
) -> None:
    """Run the label server in the foreground until interrupted (Ctrl-C). An empty ``host``
    is refused; any address but loopback gets a one-line warning on stderr."""
    import uvicorn

    check_host(host, warn=True)
    app = make_app(root, lease_seconds=lease_seconds, idle_timeout=idle_timeout)
    uvicorn.run(app, host=host, port=port, log_level="warning", http=_http_protocol(idle_timeout))


@contextlib.contextmanager
def running_server(
    root: str | Path,
    host: str = "127.0.0.1",
    port: int = 0,
    lease_seconds: float = 60.0,
    idle_timeout: float = IDLE_TIMEOUT,
) -> Iterator[str]:
    """Run the label server on a background thread; yields its base URL (``port=0``: a free
    port). Used by tests, benchmarks, and a training process that serves its own labels."""
    import uvicorn

    check_host(host, warn=True)
    app = make_app(root, lease_seconds=lease_seconds, idle_timeout=idle_timeout)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        lifespan="off",
        http=_http_protocol(idle_timeout),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True, name="label-server")
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise ConfigError(f"the label server could not start on {host}:{port}")
        time.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
