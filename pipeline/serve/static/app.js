// The service's page: no framework, no build step, nothing from elsewhere.
// Status is polled every second, events arrive as server-sent events, each source's video is MJPEG.
"use strict";

const EVENTS_SHOWN = 30;
const cards = new Map();   // source index -> its card's elements
const PALETTE = ["#5aa9ff", "#f5b83d", "#3ecf8e", "#f0616d", "#b48cff", "#4dd4d4", "#ff8f4d", "#d4e157", "#ff6fb5", "#9aa5b1"];
let classes = [];           // the model's class names, in label order: each keeps one colour

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function colour(label) {
  const index = classes.indexOf(label);
  return index < 0 ? PALETTE[PALETTE.length - 1] : PALETTE[index % PALETTE.length];
}

function clock(iso) {
  return iso ? new Date(iso).toLocaleTimeString() : "";
}

function setConnection(text, kind) {
  const badge = document.getElementById("connection");
  badge.textContent = text;
  badge.className = `badge ${kind}`;
}

function card(source) {
  if (cards.has(source.index)) return cards.get(source.index);
  const node = document.getElementById("source-card").content.firstElementChild.cloneNode(true);
  const parts = {
    node,
    name: node.querySelector(".name"),
    state: node.querySelector(".state"),
    alerts: node.querySelector(".alerts"),
    stats: node.querySelector(".stats"),
    video: node.querySelector(".video"),
    outage: node.querySelector(".outage"),
    persons: node.querySelector(".persons"),
    timeline: node.querySelector(".timeline"),
    legend: node.querySelector(".legend"),
  };
  const stream = `/api/sources/${source.index}/stream.mjpg`;
  parts.video.src = stream;
  parts.video.addEventListener("error", () => {  // the stream broke (service restarting): try again
    setTimeout(() => { parts.video.src = `${stream}?t=${Date.now()}`; }, 2000);
  });
  document.getElementById("sources").append(node);
  cards.set(source.index, parts);
  return parts;
}

function personItem(person) {
  const item = el("li", person.uncertain ? "person uncertain" : "person");
  const who = el("div", "who", `#${person.id}`);
  if (person.down !== undefined) who.append(el("span", "badge bad", `down ${Math.round(person.down)} s`));  // on the floor after a fall
  item.append(who);
  const top = el("div", "top");
  if (!person.top5) {
    top.append(el("span", "label muted", "watching…"), el("span", "prob", ""));
  } else {
    person.top5.forEach((entry, rank) => {
      const label = el("span", rank === 0 ? "label first" : "label", entry.label);
      const bar = el("span", "bar");
      bar.style.width = `${Math.round(entry.prob * 100)}%`;
      label.append(bar);
      top.append(label, el("span", "prob", `${(entry.prob * 100).toFixed(0)}%`));
    });
  }
  item.append(top);
  return item;
}

function alertsText(alerts, name) {
  // whether the source's alerts fire now: armed, snoozed, disarmed (arming and snoozing come over MQTT)
  if (!alerts) return "";
  if (!alerts.armed[name]) return "alerts off";
  return alerts.snoozed_until ? `snoozed until ${clock(alerts.snoozed_until)}` : "alerts on";
}

function showStatus(status) {
  classes = status.model.classes;
  const privacy = status.privacy && status.privacy !== "off" ? ` · privacy: ${status.privacy}` : "";
  const rules = status.alerts ? ` · rules ${status.alerts.rules.map((r) => r.rule).join(", ")}` : "";
  document.getElementById("meta").textContent =
    `v${status.version} · up ${Math.round(status.uptime)} s · ${status.model.checkpoint} (${status.model.classes.length} classes)${rules}${privacy}`;
  for (const source of status.sources) {
    const parts = card(source);
    parts.name.textContent = `${source.name} · ${source.source}`;
    parts.state.textContent = source.state;
    parts.state.className = `state badge ${source.state === "running" ? "ok" : source.state === "ended" ? "" : "warn"}`;
    parts.alerts.textContent = alertsText(status.alerts, source.name);
    parts.alerts.className = `alerts badge ${parts.alerts.textContent === "alerts on" ? "ok" : "warn"}`;
    parts.alerts.hidden = !status.alerts;
    parts.stats.textContent = `${source.fps.toFixed(1)} fps · ${source.frames} frames · ${source.dropped} dropped · ${source.reconnects} reconnects`;
    const open = source.outages.filter((o) => o.end === null).pop();
    parts.outage.textContent = open ? `down since ${clock(open.start)}: ${open.reason}` : "";
    parts.persons.replaceChildren(...source.persons.map(personItem));
  }
}

async function pollStatus() {
  try {
    const response = await fetch("/api/status", { cache: "no-store" });
    if (response.status === 401) {
      setConnection("token needed: open the URL the service printed", "bad");
    } else if (response.ok) {
      showStatus(await response.json());
      setConnection("live", "ok");
    } else {
      setConnection(`status ${response.status}`, "warn");
    }
  } catch (error) {
    setConnection("offline", "bad");
  }
  setTimeout(pollStatus, 1000);
}

function eventItem(event, fresh) {
  const item = el("li", fresh ? "event fresh" : "event");
  const thumb = el("img");
  thumb.loading = "lazy";
  thumb.alt = `snapshot of event ${event.id}`;
  if (event.snapshot) thumb.src = event.snapshot;
  const text = el("div");
  text.append(
    el("div", "what", `${event.label} ${(event.prob * 100).toFixed(0)}%`),
    el("div", "", `person #${event.person} · source ${event.source}`),
    el("div", "when", `${clock(event.at)} · held ${event.duration.toFixed(1)} s · #${event.id}`),
  );
  if (event.clip) {  // the seconds before and after it, once recorded (the browser plays the MP4 itself)
    const clip = el("a", "clip", "▶ clip");
    clip.href = event.clip;
    clip.target = "_blank";
    clip.rel = "noopener";
    text.append(clip);
  }
  item.append(thumb, text);
  return item;
}

let eventsSeen = 0;
const shownIds = new Set();  // an event is listed once, however the stream reconnects
function addEvent(event, fresh) {
  if (shownIds.has(event.id)) return;
  shownIds.add(event.id);
  const list = document.getElementById("events");
  list.prepend(eventItem(event, fresh));
  while (list.children.length > EVENTS_SHOWN) list.lastElementChild.remove();
  eventsSeen += 1;
  document.getElementById("no-events").hidden = true;
  document.getElementById("event-count").textContent = `(${eventsSeen})`;
}

async function followEvents() {
  let last = 0;
  try {
    const response = await fetch(`/api/events?limit=${EVENTS_SHOWN}`, { cache: "no-store" });
    if (response.ok) {
      for (const event of await response.json()) {
        addEvent(event, false);
        last = event.id;
      }
    }
  } catch (error) { /* the stream below retries by itself */ }
  // On reconnection the browser sends Last-Event-ID, which the service prefers to this `since`.
  const stream = new EventSource(`/api/events/stream?since=${last}`);
  stream.addEventListener("alert", (message) => addEvent(JSON.parse(message.data), true));
}

function drawTimeline(view) {
  const parts = cards.get(view.index);
  if (!parts) return;
  const canvas = parts.timeline;
  const rows = new Map();  // "session:id" -> its segments
  for (const segment of view.segments) {
    const key = `${segment.session}:${segment.id}`;
    if (!rows.has(key)) rows.set(key, []);
    rows.get(key).push(segment);
  }
  const keys = [...rows.keys()].sort((a, b) =>
    Math.max(...rows.get(b).map((s) => s.end)) - Math.max(...rows.get(a).map((s) => s.end))).slice(0, 8);
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const rowHeight = 16;
  const height = Math.max(40, keys.length * rowHeight + 22);
  canvas.style.height = `${height}px`;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const g = canvas.getContext("2d");
  g.scale(ratio, ratio);
  g.clearRect(0, 0, width, height);
  const left = 42;
  const span = Math.max(view.now - view.start, 1e-3);
  const x = (t) => left + ((t - view.start) / span) * (width - left - 4);
  g.font = "11px system-ui, sans-serif";
  g.fillStyle = "#8b95a3";
  const minutes = span / 60;
  g.fillText(minutes >= 1 ? `last ${minutes.toFixed(0)} min` : `last ${span.toFixed(0)} s`, left, height - 6);
  g.fillText("now", width - 26, height - 6);
  const labels = new Set();
  keys.forEach((key, row) => {
    const y = 4 + row * rowHeight;
    g.fillStyle = "#8b95a3";
    g.fillText(`#${key.split(":")[1]}`, 4, y + 11);
    for (const segment of rows.get(key)) {
      labels.add(segment.label);
      g.fillStyle = colour(segment.label);
      const start = x(Math.max(segment.start, view.start));
      g.fillRect(start, y, Math.max(x(segment.end) - start, 1.5), rowHeight - 4);
    }
  });
  parts.legend.replaceChildren(...[...labels].sort().map((label) => {
    const chip = el("span", "", label);
    chip.style.setProperty("--c", colour(label));
    return chip;
  }));
}

async function pollTimeline() {
  try {
    const response = await fetch("/api/timeline", { cache: "no-store" });
    if (response.ok) (await response.json()).forEach(drawTimeline);
  } catch (error) { /* shown by the status badge */ }
  setTimeout(pollTimeline, 2000);
}

pollStatus();
followEvents();
pollTimeline();
