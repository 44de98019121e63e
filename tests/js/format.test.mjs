import assert from "node:assert/strict";
import { test } from "node:test";

import {
  badgeClass,
  formatDuration,
  formatEpochMs,
  healthSummary,
  progressView,
  recentTimes,
  safeFileName,
  usageText,
} from "../../vace_server/api/static/js/format.js";
import { activeStatuses, stageLabels } from "../../vace_server/api/static/js/schema.js";
import { schema } from "./schema_fixture.mjs";

const active = activeStatuses(schema);
const labels = stageLabels(schema);

test("formatDuration: seconds, minutes, hours; nothing for a bad value", () => {
  assert.equal(formatDuration(4.4), "4 s");
  assert.equal(formatDuration(65), "1 min 05 s");
  assert.equal(formatDuration(3 * 3600 + 7 * 60 + 59), "3 h 07 min");
  assert.equal(formatDuration(-1), "");
  assert.equal(formatDuration(Number.NaN), "");
  assert.equal(formatDuration(undefined), "");
});

test("formatEpochMs: the time alone today, date and time on another day", () => {
  const now = new Date(2026, 0, 15, 12, 0, 0);
  const today = new Date(2026, 0, 15, 9, 30, 0);
  assert.equal(formatEpochMs(today.getTime(), now), today.toLocaleTimeString());
  const before = new Date(2026, 0, 14, 9, 30, 0);
  assert.equal(formatEpochMs(before.getTime(), now), before.toLocaleString());
  assert.equal(formatEpochMs(undefined, now), "");
});

test("badgeClass keeps letters only", () => {
  assert.equal(badgeClass("SUCCEEDED"), "badge status-succeeded");
  assert.equal(badgeClass("…"), "badge status-");
});

test("stageLabels: every stage the server reports, with the server's label", () => {
  assert.equal(Object.keys(labels).length, schema.stages.length);
  assert.equal(labels.queued, "Queued");
  assert.equal(labels.uploading, "Storing the result");
});

test("progressView: a queued task shows its place and why it waits, no percent", () => {
  const progress = { stage: "queued", queue_position: 2, message: "no worker can run this model: x" };
  const view = progressView("PENDING", progress, { active, labels });
  assert.deepEqual(view, {
    hidden: false,
    stage: "Queued",
    percent: null,
    percentText: "",
    detail: "Position in queue: 2 · no worker can run this model: x",
  });
  assert.equal(progressView("PENDING", null, { active, labels }).stage, "Queued");
});

test("progressView: a running task shows stage, percent, steps, ETA and a cancel request", () => {
  const progress = { stage: "denoising", percent: 42.4, step: 3, total_steps: 10, eta_seconds: 75 };
  assert.deepEqual(progressView("RUNNING", progress, { active, labels, cancelRequested: true }), {
    hidden: false,
    stage: "Denoising",
    percent: 42.4,
    percentText: "42%",
    detail: "Step 3 / 10 · ETA 1 min 15 s · Cancel requested…",
  });
  assert.equal(progressView("RUNNING", {}, { active }).stage, "Starting");
  assert.equal(progressView("RUNNING", { stage: "brand-new" }, { active }).stage, "brand-new");
});

test("progressView: hidden once the task is over", () => {
  for (const status of schema.statuses.final) {
    assert.deepEqual(progressView(status, {}, { active }), { hidden: true });
  }
});

test("healthSummary: version, models, ready workers and warnings", () => {
  const health = {
    version: "1.2.3",
    model: ["a", "b"],
    workers: [{ ready: true, alive: true }, { ready: false, alive: true }],
    error: "degraded",
    warnings: ["w"],
  };
  assert.deepEqual(healthSummary(health), {
    text: "vace-server 1.2.3 · model a, b · 1 / 2 workers ready",
    bad: false,
    warnings: ["degraded", "w"],
  });
  assert.deepEqual(healthSummary({ model: "m", workers: [] }), {
    text: "vace-server · model m · 0 / 0 workers ready",
    bad: true,
    warnings: [],
  });
  const one = healthSummary({ workers: [{ ready: true, alive: true }] });
  assert.equal(one.text, "vace-server · 1 / 1 worker ready");
});

test("usageText and recentTimes", () => {
  const usage = { video_duration: 5, video_ratio: "16:9", video_count: 1 };
  assert.equal(usageText(usage), "5 s · 16:9 · 1 video");
  assert.equal(usageText(null), "");
  const engine = { ...usage, preset: "fast", steps: 4, guidance_scale: 1, seed: 1234 };
  assert.equal(usageText(engine), "5 s · 16:9 · 1 video · preset fast · 4 steps · guidance 1 · seed 1234");
  const now = new Date(2026, 0, 15, 12, 0, 0);
  const created = new Date(2026, 0, 15, 11, 0, 0).getTime();
  assert.equal(
    recentTimes({ gmt_create: created, start_time: created, end_time: created + 95_000 }, now),
    `${new Date(created).toLocaleTimeString()} · ran 1 min 35 s`,
  );
  assert.equal(recentTimes({}, now), "");
});

test("safeFileName: ASCII, no leading dots, unique within one policy", () => {
  const used = new Set();
  assert.equal(safeFileName("球 subject.png", used), "subject.png");
  assert.equal(safeFileName("subject.png", used), "subject-2.png");
  assert.equal(safeFileName("../../etc/passwd", used), "etc_passwd");
  assert.equal(safeFileName("", used), "file");
  assert.equal(safeFileName("日本", used), "file-2");
  assert.equal(safeFileName(`${"a".repeat(200)}.mp4`, used).length, 100);
});
