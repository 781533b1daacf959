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
from importlib import resources
from pathlib import Path
from typing import Any

from feedbackgym.errors import ConfigError
from feedbackgym.feedback.human.queue import ANSWERS, QUERY_ID, LabelQueue

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


def _asset(name: str) -> str:
    """A file of the labelling page (``page/``: its HTML, script and style sheet)."""
    return (resources.files("feedbackgym.feedback.human") / "page" / name).read_text("utf-8")


#: The labelling page, its script and style sheet, and the page shown for a bad link.
PAGE, SCRIPT, CSS = _asset("label.html"), _asset("label.js"), _asset("label.css")
FORBIDDEN_PAGE = _asset("forbidden.html")


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
