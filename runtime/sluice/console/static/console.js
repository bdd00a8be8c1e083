// The Sluice console's few lines of JavaScript (no library, no build step):
// - the live tail: an EventSource on [data-tail-url], each event prepended as text (never as HTML);
// - in-place refresh: [data-refresh-url] elements fetch their server-rendered fragment every
//   data-refresh-seconds (the lag chart);
// - confirmation of destructive buttons that carry data-confirm.
"use strict";

const TAIL_KEPT = 200;

function startTail(list) {
  const status = document.getElementById("tail-status");
  const source = new EventSource(list.dataset.tailUrl, { withCredentials: true });
  source.onopen = () => { status.textContent = "live"; list.dataset.state = "open"; };
  source.onerror = () => { status.textContent = "reconnecting…"; list.dataset.state = "retrying"; };
  source.onmessage = (message) => {
    const event = JSON.parse(message.data);
    const item = document.createElement("li");
    item.className = "tail-event";
    item.dataset.offset = String(event.offset);
    item.dataset.partition = String(event.partition);
    const heading = document.createElement("div");
    heading.textContent = `partition ${event.partition} · offset ${event.offset} · ${event.event_type} · ` +
      `${event.timestamp}${event.correlation_id ? " · correlation " + event.correlation_id : ""}`;
    const payload = document.createElement("pre");
    payload.className = "payload";
    payload.textContent = event.payload;
    item.append(heading, payload);
    list.prepend(item);
    while (list.children.length > TAIL_KEPT) list.lastElementChild.remove();
  };
}

function startRefresh(frame) {
  const seconds = Number(frame.dataset.refreshSeconds || "5");
  const refresh = async () => {
    try {
      const answer = await fetch(frame.dataset.refreshUrl, { credentials: "same-origin" });
      if (answer.ok) frame.innerHTML = await answer.text();  // a fragment rendered (and escaped) by the server
    } catch (error) {
      // the server away for a moment: the next refresh tries again
    }
  };
  setInterval(refresh, seconds * 1000);
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-tail-url]").forEach(startTail);
  document.querySelectorAll("[data-refresh-url]").forEach(startRefresh);
  document.querySelectorAll("[data-confirm]").forEach((button) => {
    button.addEventListener("click", (click) => {
      if (!window.confirm(button.dataset.confirm)) click.preventDefault();
    });
  });
});
