"""Take the README's screenshot of the labelling page (docs/labelling.png) with headless chromium.

Two Pendulum-v1 segments (one swinging up under a bang-bang controller, one hanging from a
random policy) are published to a fresh label folder as a human teacher would, the label server
serves them, and Debian's chromium (apt-get install chromium chromium-driver) photographs the
page once both clips are showing.

    python scripts/label_screenshot.py [--out docs/labelling.png]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time

import gymnasium as gym
import numpy as np

from feedbackgym.feedback import HumanTeacher, Segments
from feedbackgym.feedback.human.server import running_server
from feedbackgym.feedback.human.teacher import query_id


def segment(policy: str, length: int = 60, seed: int = 0) -> Segments:
    env = gym.make("Pendulum-v1")
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    rows, actions, rewards = [], [], []
    for _ in range(length):
        if policy == "pump":  # push along the swing: energy goes up
            action = np.array([2.0 * np.sign(obs[2]) if obs[2] else 2.0], np.float32)
        else:
            action = rng.uniform(-0.3, 0.3, size=1).astype(np.float32)
        rows.append(obs)
        actions.append(action)
        obs, reward, *_ = env.step(action)
        rewards.append(reward)
    return Segments(np.array([rewards]), np.array([rows]), np.array([actions]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/labelling.png")
    args = parser.parse_args()

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    folder = tempfile.mkdtemp(prefix="labels-")
    a, b = segment("pump", seed=3), segment("random", seed=4)
    teacher = HumanTeacher(dir=folder, env="Pendulum-v1")
    qid = query_id(a, b, 0)
    clips = [teacher.render_clip(s.obs[0], s.actions[0]) for s in (a, b)]
    teacher.queue.publish(qid, *clips, {"env": "Pendulum-v1", "length": a.length})
    token = teacher.queue.add_annotators(["alice"])["alice"]

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=900,620",
                 "--hide-scrollbars", "--force-device-scale-factor=1"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(
        service=Service(executable_path=shutil.which("chromedriver")), options=options
    )
    try:
        with running_server(folder) as url:
            driver.get(f"{url}/?token={token}")
            WebDriverWait(driver, 15).until(
                lambda d: d.execute_script(
                    "return [...document.querySelectorAll('#pair img')]"
                    ".every(i => i.complete && i.naturalWidth > 0)"
                    " && !document.getElementById('pair').hidden"
                )
            )
            time.sleep(1.2)  # let the clips play a little
            driver.save_screenshot(args.out)
    finally:
        driver.quit()
        shutil.rmtree(folder, ignore_errors=True)
    print(args.out)


if __name__ == "__main__":
    main()
