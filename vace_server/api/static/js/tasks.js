// The task panel (polling, progress, result, cancel) and the recent-tasks list.

import { ApiError } from "./api.js";
import { $, $$, hideError, setBadge, showError } from "./dom.js";
import { progressView, recentTimes, usageText } from "./format.js";
import { activeStatuses, finalStatuses, stageLabels } from "./schema.js";
import { state } from "./state.js";

const POLL_MS = 1000;
const RETRY_MS = 3000;

// The message shown for a final status other than SUCCEEDED: [code, message, info?].
const OUTCOME = {
  CANCELED: () => [new ApiError("", "The task was canceled."), true],
  UNKNOWN: () => [
    new ApiError("UNKNOWN", "No such task for this key: it may have expired, or belong to another account."),
    true,
  ],
  FAILED: (out) => [new ApiError(out.code || "Failed", out.message || ""), false],
};

function stopPolling() {
  if (!state.task) return;
  state.task.stopped = true;
  clearTimeout(state.task.timer);
}

export function openTask(id) {
  stopPolling();
  state.task = { id, timer: null, stopped: false, inFlight: false, lastStatus: null, cancelRequested: false };
  try {
    history.replaceState(null, "", `#task=${encodeURIComponent(id)}`);
  } catch {
    // not important (e.g. sandboxed documents)
  }
  $("#task-empty").hidden = true;
  $("#task-view").hidden = false;
  $("#task-id").textContent = id;
  setBadge($("#task-status"), "…");
  for (const sel of ["#task-submitted", "#task-scheduled", "#task-ended"]) $(sel).textContent = "–";
  $("#progress").hidden = true;
  $("#result").hidden = true;
  const video = $("#result-video");
  video.removeAttribute("src");
  video.load();
  hideError($("#task-error"));
  $("#cancel").disabled = true;
  markCurrentInList();
  poll(state.task);
}

function kick(token) {
  if (token.stopped || token.inFlight) return;
  clearTimeout(token.timer);
  poll(token);
}

async function poll(token) {
  if (token.stopped) return;
  token.inFlight = true;
  token.timer = null;
  let delay = POLL_MS;
  const final = finalStatuses(state.schema);
  try {
    const answer = await state.api(`tasks/${encodeURIComponent(token.id)}`);
    if (token.stopped) return;
    renderTask(answer, token);
    const status = answer.output.task_status;
    if (token.lastStatus !== status) {
      updateRecentRow(token.id, status);
      if (final.has(status) && token.lastStatus) refreshRecent();
    }
    token.lastStatus = status;
    if (final.has(status)) delay = null;
  } catch (err) {
    if (token.stopped) return;
    showError($("#task-error"), err);
    delay = RETRY_MS;
  } finally {
    token.inFlight = false;
  }
  if (delay !== null && !token.stopped) token.timer = setTimeout(() => poll(token), delay);
}

function renderTask(answer, token) {
  const out = answer.output || {};
  const status = out.task_status || "UNKNOWN";
  setBadge($("#task-status"), status);
  $("#task-submitted").textContent = out.submit_time || "–";
  $("#task-scheduled").textContent = out.scheduled_time || "–";
  $("#task-ended").textContent = out.end_time || "–";
  const active = activeStatuses(state.schema);
  $("#cancel").disabled = !active.has(status) || Boolean(token.cancelRequested);
  const labels = stageLabels(state.schema);
  renderProgress(progressView(status, out.progress, { active, labels, cancelRequested: token.cancelRequested }));

  const errorBox = $("#task-error");
  const outcome = OUTCOME[status];
  if (outcome) {
    const [err, info] = outcome(out);
    showError(errorBox, err, { info });
  } else {
    hideError(errorBox);
  }
  if (status === "SUCCEEDED" && out.video_url) renderResult(out, answer.usage);
  else $("#result").hidden = true;
}

function renderProgress(view) {
  const box = $("#progress");
  box.hidden = view.hidden;
  if (view.hidden) return;
  const bar = $("#progress-bar");
  $("#progress-stage").textContent = view.stage;
  if (view.percent === null) bar.removeAttribute("value"); // indeterminate
  else bar.value = view.percent;
  $("#progress-percent").textContent = view.percentText;
  $("#progress-detail").textContent = view.detail;
}

function renderResult(out, usage) {
  const video = $("#result-video");
  $("#result").hidden = false;
  if (video.getAttribute("src") !== out.video_url) {
    video.src = out.video_url;
    $("#result-link").href = out.video_url;
    $("#result-download").href = out.video_url;
    $("#result-download").download = `${out.task_id || "video"}.mp4`;
  }
  $("#result-usage").textContent = usageText(usage);
  $("#result-orig").textContent = out.orig_prompt || "";
  $("#result-actual-row").hidden = !out.actual_prompt || out.actual_prompt === out.orig_prompt;
  $("#result-actual").textContent = out.actual_prompt || "";
}

export async function cancelCurrent() {
  const token = state.task;
  if (!token) return;
  $("#cancel").disabled = true;
  token.cancelRequested = true;
  try {
    await state.api(`tasks/${encodeURIComponent(token.id)}/cancel`, { method: "POST" });
    $("#progress-detail").textContent = "Cancel requested…";
  } catch (err) {
    token.cancelRequested = false;
    showError($("#task-error"), err);
  }
  kick(token);
}

// ------------------------------------------------------------------------------ recent tasks

/** Empties the recent-task list (another key: another account's tasks). */
export function clearRecent() {
  $("#recent-list").replaceChildren();
  $("#recent-empty").hidden = true;
  $("#recent-need-key").hidden = true;
}

export async function refreshRecent() {
  const seq = ++state.recentSeq;
  const errorBox = $("#recent-error");
  const button = $("#recent-refresh");
  button.setAttribute("aria-busy", "true");
  try {
    const answer = await state.api("tasks?page_size=10");
    if (seq !== state.recentSeq) return;
    hideError(errorBox);
    $("#recent-need-key").hidden = true;
    const outputs = new Map((answer.tasks || []).map((t) => [t.task_id, t]));
    const items = (answer.data || []).map((entry) => recentItem(entry, outputs.get(entry.task_id)));
    $("#recent-list").replaceChildren(...items);
    $("#recent-empty").hidden = items.length > 0;
    markCurrentInList();
  } catch (err) {
    if (seq !== state.recentSeq) return;
    clearRecent();
    // No key typed yet: say where the key is, rather than a red InvalidApiKey.
    if (err.code === "InvalidApiKey" && !$("#api-key").value.trim()) {
      hideError(errorBox);
      $("#recent-need-key").hidden = false;
      return;
    }
    showError(errorBox, err);
  } finally {
    if (seq === state.recentSeq) button.removeAttribute("aria-busy");
  }
}

function span(className, text) {
  const el = document.createElement("span");
  el.className = className;
  el.textContent = text;
  return el;
}

function recentItem(entry, output) {
  const li = document.createElement("li");
  li.dataset.taskId = entry.task_id;
  const button = document.createElement("button");
  button.type = "button";
  button.className = "task-row";
  button.addEventListener("click", () => openTask(entry.task_id));

  const badge = document.createElement("span");
  setBadge(badge, entry.status || "UNKNOWN");
  const id = document.createElement("code");
  id.className = "task-row-id";
  id.textContent = entry.task_id;
  id.title = entry.task_id;
  const when = span("task-row-time", recentTimes(entry));
  button.append(badge, id, when);
  if (output && output.orig_prompt) button.append(span("task-row-prompt", output.orig_prompt));
  if (output && output.code) {
    button.append(span("task-row-prompt error-text", `${output.code}: ${output.message || ""}`));
  }
  button.setAttribute("aria-label", `Open task ${entry.task_id}, ${entry.status}, ${when.textContent}`);
  li.append(button);
  return li;
}

function updateRecentRow(id, status) {
  const li = $$("#recent-list li").find((el) => el.dataset.taskId === id);
  if (li) setBadge($(".badge", li), status);
}

function markCurrentInList() {
  for (const li of $$("#recent-list li")) {
    const button = $("button", li);
    if (state.task && li.dataset.taskId === state.task.id) button.setAttribute("aria-current", "true");
    else button.removeAttribute("aria-current");
  }
}
