"""The labelling page in a real headless browser (Debian's chromium, driven by selenium)."""

from __future__ import annotations

import shutil

import pytest

from feedbackgym.feedback import HumanTeacher, LabelQueue
from feedbackgym.feedback.human.server import running_server
from feedbackgym.feedback.human.teacher import query_id
from tests.feedback.test_human import pendulum_segments

#: The system browser and driver (apt-get install chromium chromium-driver); never a download.
CHROMIUM = ("chromium", "chromedriver")
MISSING = (
    "the browser tests need Debian's chromium and chromium-driver (`make test` installs them "
    "with apt-get; else: apt-get install chromium chromium-driver) and selenium (the 'human' "
    "extra)"
)


def make_driver():
    """A headless chromium; fails (never skips) when the browser or selenium is missing."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail(MISSING)
    browser, driver = (shutil.which(name) for name in CHROMIUM)
    if browser is None or driver is None:
        pytest.fail(MISSING)
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1000,700", "--disable-extensions", "--no-first-run"):  # fmt: skip
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)


@pytest.fixture(scope="module")
def browser():
    driver = make_driver()
    yield driver
    driver.quit()


@pytest.fixture
def labelling(tmp_path):
    """Two real Pendulum queries in a label folder, alice's token and the server's URL."""
    a, _ = pendulum_segments(3, 6, seed=1)
    b, _ = pendulum_segments(3, 6, seed=2)
    teacher = HumanTeacher(dir=str(tmp_path), env="Pendulum-v1", clip_size=96)
    ids = [query_id(a, b, i) for i in range(3)]
    for i, qid in enumerate(ids):
        clips = [teacher.render_clip(s.obs[i], s.actions[i]) for s in (a, b)]
        teacher.queue.publish(qid, *clips, {"env": "Pendulum-v1", "length": 6})
    token = teacher.queue.add_annotators(["alice"])["alice"]
    with running_server(tmp_path) as url:
        yield url, token, teacher.queue, ids


def wait_for(driver, condition, timeout: float = 10.0):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(lambda d: condition(d))


def shown_query(driver) -> str | None:
    return driver.execute_script(
        "const p = document.getElementById('pair');"
        "const imgs = [...p.querySelectorAll('img')];"
        "return !p.hidden && imgs.every(i => i.complete && i.naturalWidth > 0)"
        " ? p.dataset.query : null;"
    )


def test_clicks_and_keys_record_answers_before_the_next_query_shows(browser, labelling):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    url, token, queue, ids = labelling
    browser.get(f"{url}/?token={token}")
    wait_for(browser, lambda d: shown_query(d) == ids[0])  # both clips decoded
    assert browser.find_element(By.ID, "annotator").text == "alice"
    assert browser.find_element(By.ID, "open").text == "3"

    browser.find_element(By.ID, "btn-a").click()
    wait_for(browser, lambda d: shown_query(d) == ids[1])
    record = queue.read_answer(ids[0])
    assert (record["answer"], record["annotator"]) == ("a", "alice")
    assert browser.find_element(By.ID, "done").text == "1"

    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.ARROW_RIGHT)
    wait_for(browser, lambda d: shown_query(d) == ids[2])
    assert queue.read_answer(ids[1])["answer"] == "b"

    browser.find_element(By.TAG_NAME, "body").send_keys("3")
    wait_for(browser, lambda d: d.find_element(By.ID, "waiting").is_displayed())
    assert queue.read_answer(ids[2])["answer"] == "equal"
    assert not browser.find_element(By.ID, "btn-a").is_enabled()


def test_the_token_leaves_the_address_bar_and_no_url_carries_it(browser, labelling):
    """The link's token is taken once: the page sets an HttpOnly cookie and clears the
    address bar; clips and API calls go without it, and a reload still works."""
    url, token, queue, ids = labelling
    browser.delete_all_cookies()
    browser.get(f"{url}/?token={token}")
    wait_for(browser, lambda d: shown_query(d) == ids[0])
    assert browser.current_url == f"{url}/"
    sources = browser.execute_script("return [...document.querySelectorAll('img')].map(i => i.src)")
    assert sources == [f"{url}/clips/{ids[0]}/a", f"{url}/clips/{ids[0]}/b"]
    assert browser.execute_script("return document.cookie") == ""  # HttpOnly: not for scripts
    (cookie,) = browser.get_cookies()
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["value"] == token
    browser.refresh()
    wait_for(browser, lambda d: shown_query(d) == ids[0])
    assert browser.find_element("id", "annotator").text == "alice"


def test_a_query_answered_elsewhere_moves_the_page_on(browser, labelling):
    from selenium.webdriver.common.by import By

    url, token, queue, ids = labelling
    browser.get(f"{url}/?token={token}")
    wait_for(browser, lambda d: shown_query(d) == ids[0])
    assert queue.answer(ids[0], "b", "bob")  # bob was quicker
    browser.find_element(By.ID, "btn-skip").click()
    wait_for(browser, lambda d: shown_query(d) == ids[1])
    assert "Someone else answered" in browser.find_element(By.ID, "status").text
    assert queue.read_answer(ids[0])["annotator"] == "bob"


def test_the_page_without_a_valid_token_shows_no_query(browser, labelling):
    url, token, queue, _ = labelling
    for link in (f"{url}/", f"{url}/?token={token[:-2]}"):
        browser.get(link)
        assert "This link is not valid" in browser.page_source
    assert queue.open_queries() != [] and all(
        queue.read_answer(qid) is None for qid in queue.open_queries()
    )


def test_a_query_published_while_the_page_waits_appears(browser, tmp_path):
    queue = LabelQueue(tmp_path)
    token = queue.add_annotators(["alice"])["alice"]
    with running_server(tmp_path) as url:
        browser.get(f"{url}/?token={token}")
        wait_for(browser, lambda d: d.find_element("id", "waiting").is_displayed())
        teacher = HumanTeacher(dir=str(tmp_path), env="Pendulum-v1", clip_size=64)
        a, _ = pendulum_segments(1, 4, seed=5)
        clip = teacher.render_clip(a.obs[0], a.actions[0])
        queue.publish("ab" * 12, clip, clip, {})
        wait_for(browser, lambda d: shown_query(d) == "ab" * 12, timeout=15)


@pytest.mark.usefixtures("restore_torch_threads")
def test_a_tiny_human_run_is_answered_through_the_page_by_clicks_and_keys(browser, tmp_path):
    """`train --teacher human` in one thread, a person at the page in the browser: the run
    finishes with exactly the answers given there, each recorded with who gave it."""
    import json
    import threading

    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from feedbackgym.studies.train import TrainConfig, train

    labels_dir = tmp_path / "labels"
    token = LabelQueue(labels_dir).add_annotators(["erin"])["erin"]
    config = TrainConfig.from_dict(
        {
            "env": "Pendulum-v1",
            "algo": "pref-ppo",
            "teacher": "human",
            "teacher_kwargs": {
                "dir": str(labels_dir),
                "env": "Pendulum-v1",
                "poll_interval": 0.02,
                "clip_size": 48,
            },
            "labels": 6,
            "segment_length": 5,
            "query": "uniform",
            "timesteps": 512,
            "n_envs": 2,
            "device": "cpu",
            "algo_kwargs": {"n_steps": 64, "batch_size": 64, "n_epochs": 1},
            "eval_every": 512,
            "progress": False,
        }
    )
    result: dict = {}
    run = threading.Thread(target=lambda: result.update(train(config, tmp_path / "run")))
    run.start()
    answered: list[str] = []
    with running_server(labels_dir) as url:
        browser.get(f"{url}/?token={token}")
        body = browser.find_element(By.TAG_NAME, "body")
        while run.is_alive() or shown_query(browser):
            qid = shown_query(browser)
            if qid is None or qid in answered:
                run.join(timeout=0.05)
                continue
            if len(answered) % 2:
                body.send_keys(Keys.ARROW_LEFT)  # by key
            else:
                browser.find_element(By.ID, "btn-b").click()  # by mouse
            answered.append(qid)
            wait_for(browser, lambda d, q=qid: shown_query(d) != q)
    run.join()
    assert result["labels_used"] == 6 and len(answered) == 6
    records = [json.loads(p.read_text()) for p in (labels_dir / "answers").glob("*.json")]
    assert {r["annotator"] for r in records} == {"erin"}
    assert all(r["seconds"] is not None and 0 <= r["seconds"] < 60 for r in records)
    assert sorted(r["answer"] for r in records) == ["a", "a", "a", "b", "b", "b"]
    assert (tmp_path / "run" / "summary.json").exists()
