"""The label server over real HTTP: tokens, refusals, durability, leases, restarts."""

from __future__ import annotations

import errno
import json
import logging
import os
import socket
import threading
import time

import numpy as np
import pytest
import requests

from feedbackgym.errors import ConfigError
from feedbackgym.feedback import HumanTeacher, LabelQueue
from feedbackgym.feedback.human import queue as label_queue
from feedbackgym.feedback.human.server import MAX_BODY, check_host, running_server
from tests.feedback.test_human import pendulum_segments

IDS = [f"{k:024x}" for k in range(3)]


@pytest.fixture
def server(tmp_path):
    """A label folder with three queries, tokens for alice and bob, and its server's URL."""
    queue = LabelQueue(tmp_path)
    for qid in IDS:
        queue.publish(qid, b"GIF89a-" + qid.encode() + b"-a", b"GIF89a-b", {})
    tokens = queue.add_annotators(["alice", "bob"])
    with running_server(tmp_path) as url:
        yield url, tokens, queue


def as_(token: str) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    return session


def post(url: str, token: str | None, body: bytes | dict, **headers: str) -> requests.Response:
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return requests.post(f"{url}/api/answer", data=data, headers=headers, timeout=10)


# ----- tokens ---------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/", "/api/next", f"/clips/{IDS[0]}/a"])
@pytest.mark.parametrize("token", [None, "", "not-a-token", "x" * 5000])
def test_reads_without_a_valid_token_are_forbidden(server, path, token):
    url, _, _ = server
    params = None if token is None else {"token": token}
    assert requests.get(url + path, params=params, timeout=10).status_code == 403


def test_answers_without_a_valid_token_are_forbidden_and_not_recorded(server):
    url, tokens, queue = server
    for token in (None, "wrong", tokens["alice"] + "x"):
        assert post(url, token, {"id": IDS[0], "answer": "a"}).status_code == 403
    assert queue.read_answer(IDS[0]) is None


def test_token_in_the_query_string_opens_the_page(server):
    url, tokens, _ = server
    page = requests.get(url, params={"token": tokens["bob"]}, timeout=10)
    assert page.status_code == 200 and "Which clip is better?" in page.text


def test_the_links_token_becomes_an_http_only_strict_cookie(server):
    """The link's token is read once (``GET /?token=``); then a cookie carries it, so no
    other URL (clips, API) holds it, and a TLS proxy's log sees it at most once."""
    url, tokens, queue = server
    browser = requests.Session()
    page = browser.get(url, params={"token": tokens["bob"]}, timeout=10)
    cookie = page.headers["set-cookie"]
    assert f"feedbackgym_token={tokens['bob']}" in cookie
    assert {"httponly", "samesite=strict", "path=/"} <= {
        part.strip().lower() for part in cookie.split(";")
    }
    shown = browser.get(f"{url}/api/next", timeout=10).json()
    assert shown["annotator"] == "bob" and shown["query"] == IDS[0]
    assert browser.get(f"{url}/clips/{IDS[0]}/b", timeout=10).content == b"GIF89a-b"
    reply = browser.post(f"{url}/api/answer", json={"id": IDS[0], "answer": "b"}, timeout=10)
    assert reply.status_code == 200 and queue.read_answer(IDS[0])["annotator"] == "bob"
    assert browser.get(url, timeout=10).status_code == 200  # a reload, token gone from the URL


def test_a_token_in_the_url_is_read_by_the_page_only(server):
    url, tokens, queue = server
    valid = {"token": tokens["alice"]}
    for path in ("/api/next", f"/clips/{IDS[0]}/a"):
        assert requests.get(url + path, params=valid, timeout=10).status_code == 403, path
    body = json.dumps({"id": IDS[0], "answer": "a"})
    reply = requests.post(f"{url}/api/answer", params=valid, data=body, timeout=10)
    assert reply.status_code == 403 and queue.read_answer(IDS[0]) is None
    script = requests.get(f"{url}/label.js", timeout=10).text
    assert "history.replaceState" in script and "token=" not in script


# ----- answering ------------------------------------------------------------------------------
def test_an_answer_is_on_disk_with_its_annotator_before_the_reply(server):
    url, tokens, queue = server
    first = as_(tokens["alice"]).get(f"{url}/api/next", timeout=10).json()
    assert first["query"] == IDS[0] and first["open"] == 3 and first["annotator"] == "alice"
    reply = post(url, tokens["alice"], {"id": IDS[0], "answer": "equal"})
    assert reply.status_code == 200
    record = queue.read_answer(IDS[0])
    assert (record["answer"], record["annotator"]) == ("equal", "alice")
    following = as_(tokens["alice"]).get(f"{url}/api/next", timeout=10).json()
    assert following["query"] == IDS[1] and following["answered_by_you"] == 1


def test_answered_queries_conflict_and_unknown_ones_are_not_found(server):
    url, tokens, queue = server
    assert post(url, tokens["alice"], {"id": IDS[0], "answer": "a"}).status_code == 200
    assert post(url, tokens["bob"], {"id": IDS[0], "answer": "b"}).status_code == 409
    assert queue.read_answer(IDS[0])["answer"] == "a"
    queue.withdraw(IDS[1])
    assert post(url, tokens["bob"], {"id": IDS[1], "answer": "b"}).status_code == 409
    for unknown in ("f" * 24, "../annotators", "0" * 23, "Z" * 24):
        assert post(url, tokens["bob"], {"id": unknown, "answer": "b"}).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        b'{"id": "000000000000000000000000", "answer": []}',
        b'{"id": "000000000000000000000000", "answer": {}}',
        b"{}",
        b"[" * 2000 + b"]" * 2000,  # deeper than Python's recursion limit
        b'{"id": ' + b"[" * 1900 + b"]" * 1900 + b', "answer": "a"}',
        b"",
        b"not json",
        b"\xff\xfe",
        b"[]",
        b'{"id": "000000000000000000000000"}',
        b'{"id": "000000000000000000000000", "answer": "A"}',
        b'{"id": "000000000000000000000000", "answer": 1}',
        b'{"id": 7, "answer": "a"}',
        b'{"id": "000000000000000000000000", "answer": "a", "annotator": "mallory"}',
    ],
)
def test_malformed_answers_are_bad_requests(server, body):
    url, tokens, queue = server
    reply = post(url, tokens["alice"], body)
    assert reply.status_code == 400 and reply.json()["error"].startswith("body must be")
    assert queue.read_answer(IDS[0]) is None


@pytest.mark.parametrize(
    "code, status, words",
    [
        (errno.ENOSPC, 507, "the label folder is full (No space left on device)"),
        (errno.EROFS, 503, "cannot be written or read (Read-only file system)"),
        (errno.EACCES, 503, "cannot be written or read (Permission denied)"),
    ],
)
def test_a_full_or_read_only_folder_is_a_json_error_and_one_log_line(
    server, monkeypatch, caplog, code, status, words
):
    url, tokens, queue = server

    def cannot_write(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(label_queue, "_atomic_write", cannot_write)
    with caplog.at_level(logging.WARNING):
        reply = post(url, tokens["alice"], {"id": IDS[0], "answer": "a"})
    assert reply.status_code == status and words in reply.json()["error"]
    assert queue.read_answer(IDS[0]) is None
    (record,) = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert record.exc_info is None and "\n" not in record.getMessage()
    assert str(queue.root) in record.getMessage() and os.strerror(code) in record.getMessage()
    monkeypatch.undo()  # the disk has room again: the same answer is taken
    assert post(url, tokens["alice"], {"id": IDS[0], "answer": "a"}).status_code == 200


@pytest.mark.parametrize(
    "text, words",
    [
        ("{not json", "is not a JSON annotators file"),
        ("[1]", "is not a JSON annotators file"),
        ('{"alice": 5}', "annotator 'alice'"),
    ],
)
def test_an_unreadable_annotators_file_is_a_json_error_and_one_log_line(
    server, caplog, text, words
):
    url, tokens, _ = server
    path = server[2].root / "annotators.json"
    good = path.read_text()
    with caplog.at_level(logging.WARNING):
        path.write_text(text)
        replies = [
            requests.get(f"{url}/api/next", headers=as_(tokens["alice"]).headers, timeout=10),
            post(url, tokens["alice"], {"id": IDS[0], "answer": "a"}),
        ]
    for reply in replies:
        assert reply.status_code == 503 and reply.headers["content-type"] == "application/json"
        error = reply.json()["error"]
        assert error.startswith("annotators file unreadable: ") and words in error
    records = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(records) == len(replies) and all(r.exc_info is None for r in records)
    assert all("\n" not in r.getMessage() and words in r.getMessage() for r in records)
    path.write_text(good)  # fixed: the same token works again
    assert as_(tokens["alice"]).get(f"{url}/api/next", timeout=10).status_code == 200


def test_a_token_reissued_within_one_clock_tick_is_seen(server):
    """The server rereads annotators.json when its inode, mtime or size changes: a reissue
    that keeps the mtime (a coarse clock, or a copied timestamp) still replaces the token."""
    url, tokens, queue = server
    path = queue.root / "annotators.json"
    assert as_(tokens["alice"]).get(f"{url}/api/next", timeout=10).status_code == 200
    before = path.stat()
    new = queue.add_annotators(["alice"], reissue=True)["alice"]
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # the same mtime as before
    assert as_(tokens["alice"]).get(f"{url}/api/next", timeout=10).status_code == 403
    assert as_(new).get(f"{url}/api/next", timeout=10).status_code == 200


def test_oversized_bodies_are_refused_declared_or_streamed(server):
    url, tokens, _ = server
    big = {"id": IDS[0], "answer": "a", "pad": "x" * MAX_BODY}
    assert post(url, tokens["alice"], big).status_code == 413

    def chunks():  # no Content-Length: the server must count as it reads
        for _ in range(10):
            yield b"x" * 1024

    reply = requests.post(
        f"{url}/api/answer",
        data=chunks(),
        headers={"Authorization": f"Bearer {tokens['alice']}"},
        timeout=10,
    )
    assert reply.status_code == 413


# ----- leases ---------------------------------------------------------------------------------
def test_an_answer_to_a_query_lent_to_another_annotator_is_refused_while_the_lease_holds(tmp_path):
    queue = LabelQueue(tmp_path)
    for qid in IDS:
        queue.publish(qid, b"GIF89a", b"GIF89a", {})
    tokens = queue.add_annotators(["alice", "bob"])
    with running_server(tmp_path, lease_seconds=1.0) as url:
        assert as_(tokens["alice"]).get(f"{url}/api/next", timeout=10).json()["query"] == IDS[0]
        reply = post(url, tokens["bob"], {"id": IDS[0], "answer": "b"})
        assert reply.status_code == 409 and "another annotator" in reply.json()["error"]
        assert queue.read_answer(IDS[0]) is None
        # bob's refusal leaves alice's lease as it was: nobody else is shown it meanwhile
        assert as_(tokens["bob"]).get(f"{url}/api/next", timeout=10).json()["query"] == IDS[1]
        time.sleep(1.1)  # alice's lease on IDS[0] ran out (bob's on IDS[1] too)
        assert post(url, tokens["bob"], {"id": IDS[0], "answer": "b"}).status_code == 200
        assert queue.read_answer(IDS[0])["annotator"] == "bob"
        assert post(url, tokens["alice"], {"id": IDS[0], "answer": "a"}).status_code == 409


# ----- files ----------------------------------------------------------------------------------
def test_clips_are_served_and_nothing_else_is(server):
    url, tokens, _ = server
    alice = as_(tokens["alice"])
    clip = alice.get(f"{url}/clips/{IDS[0]}/a", timeout=10)
    assert clip.status_code == 200 and clip.headers["content-type"] == "image/gif"
    assert clip.content == b"GIF89a-" + IDS[0].encode() + b"-a"
    for path in (
        f"/clips/{IDS[0]}/c",
        f"/clips/{IDS[0]}/a.gif",
        "/clips/..%2F..%2Fannotators.json/a",
        "/clips/..%2Fqueries%2F" + IDS[0] + "/a",
        "/annotators.json",
        "/feedback.jsonl",
        f"/queries/{IDS[0]}.json",
        f"/answers/{IDS[0]}.json",
    ):
        assert alice.get(url + path, timeout=10).status_code == 404, path


def test_clips_that_are_symlinks_are_not_followed(server, tmp_path_factory):
    """Whoever can write the folder must not make the server read other files: a clip that
    is a link (to a key outside, or to annotators.json) is refused, not served."""
    url, tokens, queue = server
    secret = tmp_path_factory.mktemp("outside") / "id_ed25519"
    secret.write_bytes(b"GIF89a PRIVATE KEY")
    qid = "c" * 24
    queue.publish(qid, b"GIF89a", b"GIF89a", {})
    for side, target in (("a", secret), ("b", queue.root / "annotators.json")):
        clip = queue.root / "clips" / f"{qid}-{side}.gif"
        clip.unlink()
        clip.symlink_to(target)
    alice = as_(tokens["alice"])
    for side in "ab":
        reply = alice.get(f"{url}/clips/{qid}/{side}", timeout=10)
        assert reply.status_code == 404 and reply.json() == {"error": "no such clip"}


def test_a_clips_folder_that_is_a_symlink_is_not_followed(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / f"{IDS[0]}-a.gif").write_bytes(b"GIF89a private")
    folder = tmp_path / "labels"
    folder.mkdir()
    (folder / "clips").symlink_to(elsewhere)
    queue = LabelQueue(folder)
    token = queue.add_annotators(["alice"])["alice"]
    with running_server(folder) as url:
        assert as_(token).get(f"{url}/clips/{IDS[0]}/a", timeout=10).status_code == 404


def test_a_label_folder_reached_through_a_symlink_serves_its_clips(tmp_path):
    """The folder's own path is the operator's (e.g. a link to a shared disk): followed."""
    (tmp_path / "disk").mkdir()
    (tmp_path / "labels").symlink_to(tmp_path / "disk")
    queue = LabelQueue(tmp_path / "labels")
    queue.publish(IDS[0], b"GIF89a-a", b"GIF89a-b", {})
    token = queue.add_annotators(["alice"])["alice"]
    with running_server(tmp_path / "labels") as url:
        assert as_(token).get(f"{url}/clips/{IDS[0]}/a", timeout=10).content == b"GIF89a-a"


def test_raw_dot_dot_paths_do_not_escape(server):
    """Send ``..`` segments unnormalised (a browser or requests would collapse them)."""
    url, tokens, _ = server
    host, port = url.removeprefix("http://").split(":")
    for target in ("/clips/../annotators.json", "/clips/../../../etc/passwd/a"):
        with socket.create_connection((host, int(port)), timeout=10) as conn:
            conn.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                         f"Authorization: Bearer {tokens['alice']}\r\n\r\n".encode())  # fmt: skip
            status = conn.recv(4096).split(b"\r\n", 1)[0]
        assert b" 404 " in status or b" 400 " in status, status


def test_every_response_carries_the_security_headers(server):
    url, tokens, _ = server
    for response in (
        requests.get(url, params={"token": tokens["alice"]}, timeout=10),
        requests.get(f"{url}/api/next", timeout=10),
        post(url, None, {}),
    ):
        assert response.headers["referrer-policy"] == "no-referrer"  # tokens live in URLs
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "default-src 'self'" in response.headers["content-security-policy"]
        assert response.headers["cache-control"] == "no-store"


# ----- listening --------------------------------------------------------------------------------
def test_an_empty_host_is_refused_and_other_than_loopback_is_warned_about(tmp_path, capsys):
    with pytest.raises(ConfigError, match="host '' would listen on every interface"):
        with running_server(tmp_path, host=""):
            pass
    for quiet in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        check_host(quiet, warn=True)
    assert capsys.readouterr().err == ""
    for loud in ("0.0.0.0", "192.168.1.7", "example.org"):
        check_host(loud, warn=True)
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"warning: listening on {loud}, not loopback" in err
    queue = LabelQueue(tmp_path)
    token = queue.add_annotators(["alice"])["alice"]
    with running_server(tmp_path, host="0.0.0.0") as url:
        assert "warning: listening on 0.0.0.0" in capsys.readouterr().err
        assert as_(token).get(f"{url}/api/next", timeout=10).status_code == 200


def test_idle_connections_are_closed(tmp_path):
    """A client that connects and sends nothing, half a request, or half a body does not hold
    a connection (or a request) open for longer than the idle timeout."""
    queue = LabelQueue(tmp_path)
    queue.publish(IDS[0], b"GIF89a", b"GIF89a", {})
    token = queue.add_annotators(["alice"])["alice"]
    with running_server(tmp_path, idle_timeout=0.5) as url:
        host, port = url.removeprefix("http://").split(":")
        for opening in (b"", b"GET / HTTP/1.1\r\nHost: x\r\n"):
            with socket.create_connection((host, int(port)), timeout=10) as conn:
                conn.sendall(opening)
                started = time.monotonic()
                assert conn.recv(4096) == b""  # closed by the server
                assert time.monotonic() - started < 5
        half_body = (
            f"POST /api/answer HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
            'Content-Type: application/json\r\nContent-Length: 60\r\n\r\n{"id": '
        )
        with socket.create_connection((host, int(port)), timeout=10) as conn:
            conn.sendall(half_body.encode())
            started = time.monotonic()
            assert conn.recv(4096).startswith(b"HTTP/1.1 408 ")
            assert time.monotonic() - started < 5
        # a request that arrives whole is served as ever
        assert as_(token).get(f"{url}/api/next", timeout=10).json()["query"] == IDS[0]


# ----- several annotators, restarts -----------------------------------------------------------
def test_two_annotators_are_shown_different_queries(server):
    url, tokens, _ = server
    shown_alice = as_(tokens["alice"]).get(f"{url}/api/next", timeout=10).json()["query"]
    shown_bob = as_(tokens["bob"]).get(f"{url}/api/next", timeout=10).json()["query"]
    assert shown_alice != shown_bob
    # alice reloading the page sees her own query again
    assert as_(tokens["alice"]).get(f"{url}/api/next", timeout=10).json()["query"] == shown_alice


def test_a_restarted_server_goes_on_where_the_last_one_stopped(tmp_path):
    queue = LabelQueue(tmp_path)
    for qid in IDS:
        queue.publish(qid, b"GIF", b"GIF", {})
    token = queue.add_annotators(["alice"])["alice"]
    with running_server(tmp_path) as url:
        assert post(url, token, {"id": IDS[0], "answer": "b"}).status_code == 200
    with running_server(tmp_path) as url:
        shown = as_(token).get(f"{url}/api/next", timeout=10).json()
        assert shown["query"] == IDS[1] and shown["open"] == 2
        assert post(url, token, {"id": IDS[0], "answer": "a"}).status_code == 409


def test_teacher_and_server_together(tmp_path):
    """A teacher blocked in prefer() gets the labels a person posts over HTTP."""
    a, _ = pendulum_segments(2, 5, seed=1)
    b, _ = pendulum_segments(2, 5, seed=2)
    teacher = HumanTeacher(dir=str(tmp_path), env="Pendulum-v1", timeout=30, poll_interval=0.01)
    token = teacher.queue.add_annotators(["carol"])["carol"]
    result = {}
    asking = threading.Thread(target=lambda: result.setdefault("labels", teacher.prefer(a, b)))
    asking.start()
    with running_server(tmp_path) as url:
        carol = as_(token)
        for choice in ("b", "a"):
            qid = None
            while qid is None:
                qid = carol.get(f"{url}/api/next", timeout=10).json()["query"]
            assert carol.get(f"{url}/clips/{qid}/b", timeout=10).content[:6] == b"GIF89a"
            assert post(url, token, {"id": qid, "answer": choice}).status_code == 200
        asking.join(timeout=30)
    np.testing.assert_array_equal(result["labels"], [0.0, 1.0])


def test_a_teacher_with_a_port_serves_its_own_page(tmp_path, capsys):
    """One process: the teacher starts the label server and prints the annotator's link."""
    a, _ = pendulum_segments(1, 4, seed=1)
    b, _ = pendulum_segments(1, 4, seed=2)
    teacher = HumanTeacher(dir=str(tmp_path), env="Pendulum-v1", port=0, poll_interval=0.01)
    result = {}
    asking = threading.Thread(target=lambda: result.setdefault("labels", teacher.prefer(a, b)))
    asking.start()
    try:
        link = None
        while link is None:
            printed = capsys.readouterr().err
            link = next((w for w in printed.split() if "?token=" in w), None)
            time.sleep(0.01)
        url, token = link.split("/?token=")
        person = as_(token)
        qid = None
        while qid is None:
            qid = person.get(f"{url}/api/next", timeout=10).json()["query"]
        assert post(url, token, {"id": qid, "answer": "b"}).status_code == 200
        asking.join(timeout=30)
    finally:
        teacher.close()
    assert result["labels"].tolist() == [0.0]
    assert LabelQueue(tmp_path).annotators() == ["annotator"]
