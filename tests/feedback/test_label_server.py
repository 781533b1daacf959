"""The label server over real HTTP: tokens, refusals, durability, leases, restarts."""

from __future__ import annotations

import json
import socket
import threading
import time

import numpy as np
import pytest
import requests

from feedbackgym.feedback import HumanTeacher, LabelQueue
from feedbackgym.feedback.label_server import MAX_BODY, running_server
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
    assert post(url, tokens["alice"], body).status_code == 400
    assert queue.read_answer(IDS[0]) is None


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


def test_raw_dot_dot_paths_do_not_escape(server):
    """Send ``..`` segments unnormalised (a browser or requests would collapse them)."""
    url, tokens, _ = server
    host, port = url.removeprefix("http://").split(":")
    for target in (f"/clips/../annotators.json?token={tokens['alice']}",
                   f"/clips/../../../etc/passwd/a?token={tokens['alice']}"):  # fmt: skip
        with socket.create_connection((host, int(port)), timeout=10) as conn:
            conn.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
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
