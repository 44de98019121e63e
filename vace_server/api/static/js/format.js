// Pure formatting: durations, times, progress, the server line, file names. No DOM.

export function formatDuration(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return "";
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
}

/** A time of day when `ms` is today (by `now`), else date and time. */
export function formatEpochMs(ms, now = new Date()) {
  if (!Number.isFinite(ms)) return "";
  const date = new Date(ms);
  return date.toDateString() === now.toDateString() ? date.toLocaleTimeString() : date.toLocaleString();
}

/** The CSS class of a status badge: "badge status-succeeded". */
export function badgeClass(status) {
  return `badge status-${String(status).toLowerCase().replace(/[^a-z]/g, "")}`;
}

/**
 * What the progress box shows for a task: { hidden } when it is not active, else
 * { stage, percent (number or null: indeterminate), percentText, detail }. `labels` maps a
 * stage name to what a person is shown (the schema's stages, see schema.js stageLabels).
 */
export function progressView(status, progress, { active, labels = {}, cancelRequested = false }) {
  if (!active.has(status)) return { hidden: true };
  const p = progress || {};
  const stage = p.stage || (status === "PENDING" ? "queued" : "");
  const label = labels[stage] || (stage ? stage : status === "RUNNING" ? "Starting" : "Queued");
  const details = [];
  let percent = null;
  if (status === "PENDING") {
    if (Number.isFinite(p.queue_position)) details.push(`Position in queue: ${p.queue_position}`);
    if (p.message) details.push(p.message); // e.g. why no worker can run it
  } else if (Number.isFinite(p.percent)) {
    percent = p.percent;
  }
  if (Number.isFinite(p.step) && Number.isFinite(p.total_steps)) {
    details.push(`Step ${p.step} / ${p.total_steps}`);
  }
  if (Number.isFinite(p.eta_seconds)) details.push(`ETA ${formatDuration(p.eta_seconds)}`);
  if (cancelRequested) details.push("Cancel requested…");
  return {
    hidden: false,
    stage: label,
    percent,
    percentText: percent === null ? "" : `${Math.round(percent)}%`,
    detail: details.join(" · "),
  };
}

/** The header's server line from GET /health: { text, bad, warnings }. */
export function healthSummary(health) {
  const models = Array.isArray(health.model) ? health.model.join(", ") : health.model;
  const workers = health.workers || [];
  const ready = workers.filter((w) => w.ready && w.alive).length;
  const parts = [`vace-server ${health.version || ""}`.trim()];
  if (models) parts.push(`model ${models}`);
  parts.push(`${ready} / ${workers.length} worker${workers.length === 1 ? "" : "s"} ready`);
  return {
    text: parts.join(" · "),
    bad: workers.length === 0 || ready === 0,
    warnings: [...(health.error ? [health.error] : []), ...(health.warnings || [])],
  };
}

/** "5 s · 16:9 · 1 video" from a task's usage. */
export function usageText(usage) {
  if (!usage) return "";
  const bits = [];
  if (usage.video_duration) bits.push(`${usage.video_duration} s`);
  if (usage.video_ratio) bits.push(usage.video_ratio);
  if (usage.video_count) bits.push(`${usage.video_count} video`);
  // this server's extension: what produced the video (send the seed again to reproduce it)
  if (usage.preset) bits.push(`preset ${usage.preset}`);
  if (Number.isFinite(usage.steps)) bits.push(`${usage.steps} steps`);
  if (Number.isFinite(usage.guidance_scale)) bits.push(`guidance ${usage.guidance_scale}`);
  if (Number.isFinite(usage.seed)) bits.push(`seed ${usage.seed}`);
  return bits.join(" · ");
}

/** The recent-tasks row's time line: when created, and how long it ran. */
export function recentTimes(entry, now = new Date()) {
  const times = [formatEpochMs(entry.gmt_create, now)];
  if (Number.isFinite(entry.start_time) && Number.isFinite(entry.end_time)) {
    times.push(`ran ${formatDuration((entry.end_time - entry.start_time) / 1000)}`);
  }
  return times.filter(Boolean).join(" · ");
}

/** An object-key-safe file name, unique within `used` (which it adds to). */
export function safeFileName(name, used) {
  let base = (name || "file").normalize("NFKD").replace(/[^\w.-]+/g, "_").replace(/^[._]+/, "");
  if (!base || base === "_") base = "file";
  base = base.slice(-100);
  let candidate = base;
  const dot = base.lastIndexOf(".");
  const stem = dot > 0 ? base.slice(0, dot) : base;
  const ext = dot > 0 ? base.slice(dot) : "";
  for (let n = 2; used.has(candidate); n++) candidate = `${stem}-${n}${ext}`;
  used.add(candidate);
  return candidate;
}
