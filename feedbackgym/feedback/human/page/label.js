"use strict";
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
