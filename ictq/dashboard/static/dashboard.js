// ictq dashboard: live numbers on the overview, and confirmation of destructive forms.
// Served from the package (no CDN); no inline script anywhere (the CSP forbids it).
"use strict";

function age(seconds) {
  if (typeof seconds !== "number") return "-";
  const s = Math.floor(seconds);
  if (s < 60) return s + "s";
  if (s < 3600) return Math.floor(s / 60) + "m " + String(s % 60).padStart(2, "0") + "s";
  if (s < 86400) return Math.floor(s / 3600) + "h " + String(Math.floor(s % 3600 / 60)).padStart(2, "0") + "m";
  return Math.floor(s / 86400) + "d " + Math.floor(s % 86400 / 3600) + "h";
}

function duration(seconds) {
  if (typeof seconds !== "number") return "-";
  if (seconds < 1) return (seconds * 1000).toFixed(0) + " ms";
  return seconds < 60 ? seconds.toFixed(1) + " s" : age(seconds);
}

function shown(value, format) {
  if (format === "age") return age(value);
  if (format === "duration") return duration(value);
  if (format === "paused") return value ? "paused" : "running";
  if (value === null || value === undefined) return "-";
  return String(value);
}

function pick(data, path) {
  return path.split(".").reduce((node, key) => (node == null ? undefined : node[key]), data);
}

function update(data) {
  document.querySelectorAll("[data-live]").forEach((el) => {
    const value = pick(data, el.getAttribute("data-live"));
    el.textContent = value === null || value === undefined ? (el.getAttribute("data-live") === "restart_requested_at" ? "never" : "-") : String(value);
  });
  const rows = Array.from(document.querySelectorAll("#queues tr[data-queue]"));
  const shownQueues = rows.map((row) => row.getAttribute("data-queue"));
  const names = data.queues.map((q) => q.queue);
  if (shownQueues.length !== names.length || shownQueues.some((name, i) => name !== names[i])) {
    window.location.reload();  // a queue came or went: the page lays the table out again
    return;
  }
  data.queues.forEach((q, i) => {
    rows[i].querySelectorAll("td[data-field]").forEach((cell) => {
      cell.textContent = shown(q[cell.getAttribute("data-field")], cell.getAttribute("data-format"));
    });
  });
  document.body.setAttribute("data-updated", data.now);
}

function live() {
  const section = document.querySelector("[data-live-source]");
  if (!section) return;
  const every = Math.max(1, Number(document.body.getAttribute("data-refresh-every")) || 5) * 1000;
  const source = section.getAttribute("data-live-source");
  const tick = () => {
    fetch(source, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((response) => (response.ok ? response.json() : Promise.reject(response.status)))
      .then(update)
      .catch(() => document.body.setAttribute("data-stale", "1"))
      .finally(() => window.setTimeout(tick, every));
  };
  window.setTimeout(tick, every);
}

function confirmations() {
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
    });
  });
}

document.addEventListener("DOMContentLoaded", () => { live(); confirmations(); });
