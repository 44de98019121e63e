// vace-server playground: native ES modules, no build step, no dependencies. It loads the
// form's schema from the server, then talks to the public DashScope-compatible API exactly
// like any other client.

import { ApiError, createApi, uploadFiles } from "./api.js";
import { buildBody, needsOssResolve } from "./body.js";
import { $, $$, hideError, showError } from "./dom.js";
import { healthSummary } from "./format.js";
import {
  activeSlots,
  addRef,
  applyFunction,
  buildForm,
  extraChecks,
  readForm,
  updateControlRequired,
  updatePreview,
} from "./form.js";
import { loadSchema } from "./schema.js";
import { state } from "./state.js";
import { cancelCurrent, clearRecent, openTask, refreshRecent } from "./tasks.js";

const KEY_STORAGE = "vace-playground:api-key";
// Resolved against the page, so a server mounted under a path prefix still works.
const API_BASE = new URL("api/v1/", document.baseURI);
const HEALTH_URL = new URL("health", document.baseURI);
const SCHEMA_URL = new URL("playground/schema.json", document.baseURI);
const ANNOTATORS_URL = new URL("playground/annotators.json", document.baseURI);

function loadKey() {
  try {
    return localStorage.getItem(KEY_STORAGE) || "";
  } catch {
    return "";
  }
}

function saveKey(value) {
  try {
    if (value) localStorage.setItem(KEY_STORAGE, value);
    else localStorage.removeItem(KEY_STORAGE);
  } catch {
    // storage unavailable (private mode): the key just is not remembered
  }
}

async function refreshHealth() {
  const line = $("#server-status");
  try {
    const response = await fetch(HEALTH_URL, { cache: "no-store" });
    const summary = healthSummary(await response.json());
    line.textContent = summary.text;
    line.classList.toggle("bad", summary.bad);
    const banner = $("#server-warning");
    banner.hidden = summary.warnings.length === 0;
    banner.textContent = summary.warnings.join(" ");
  } catch {
    line.textContent = "Server unreachable";
    line.classList.add("bad");
  }
}

/** Which controls the live workers lack; the form marks them (nothing while unknown). */
async function refreshAnnotators() {
  try {
    const response = await fetch(ANNOTATORS_URL, { cache: "no-store" });
    state.annotators = response.ok ? await response.json() : null;
  } catch {
    state.annotators = null;
  }
  applyFunction();
}

async function submit(event) {
  event.preventDefault();
  const form = $("#new-task");
  const errorBox = $("#form-error");
  const status = (text) => {
    $("#submit-status").textContent = text;
  };
  hideError(errorBox);
  if (!form.reportValidity()) return;
  const problem = extraChecks();
  if (problem) {
    showError(errorBox, problem.error);
    problem.focus.focus();
    return;
  }
  const button = $("#submit");
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    const files = activeSlots().filter((s) => s.mode === "file" && s.file);
    const uploaded = await uploadFiles(state.api, state.schema.model, files, status);
    const body = buildBody(state.schema, readForm(uploaded));
    $("#request-preview").textContent = JSON.stringify(body, null, 2);
    const headers = { "X-DashScope-Async": "enable" };
    if (uploaded.size > 0 || needsOssResolve(body)) headers["X-DashScope-OssResourceResolve"] = "enable";
    status("Submitting…");
    const answer = await state.api("services/aigc/video-generation/video-synthesis", {
      method: "POST",
      body,
      headers,
    });
    status(`Submitted task ${answer.output.task_id}.`);
    openTask(answer.output.task_id);
    refreshRecent();
  } catch (err) {
    status("");
    showError(errorBox, err);
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}

function wireKey() {
  const key = $("#api-key");
  key.value = loadKey();
  let keyTimer = null;
  key.addEventListener("input", () => {
    saveKey(key.value.trim());
    clearRecent(); // the list was the previous key's account
    clearTimeout(keyTimer);
    keyTimer = setTimeout(refreshRecent, 400);
  });
  $("#api-key-toggle").addEventListener("click", (e) => {
    const show = key.type === "password";
    key.type = show ? "text" : "password";
    e.currentTarget.textContent = show ? "Hide" : "Show";
    e.currentTarget.setAttribute("aria-pressed", String(show));
  });
  $("#api-key-forget").addEventListener("click", () => {
    key.value = "";
    saveKey("");
    clearRecent();
    key.focus();
    refreshRecent();
  });
}

function wireForm() {
  const form = $("#new-task");
  for (const radio of $$("input[name=function], input[name=mask_kind]", form)) {
    radio.addEventListener("change", applyFunction);
  }
  // A worker may have come (or gone) since: ask again when another function is chosen.
  for (const radio of $$("input[name=function]", form)) radio.addEventListener("change", refreshAnnotators);
  $("#mask_type").addEventListener("change", applyFunction);
  $("#prompt_extend").addEventListener("change", () => {
    state.promptExtendTouched = true;
  });
  $("#refs-add").addEventListener("click", () => addRef().urlInput.focus());
  const strength = $("#strength");
  const strengthRange = $("#strength-range");
  strengthRange.addEventListener("input", () => {
    strength.value = strengthRange.value;
  });
  strength.addEventListener("input", () => {
    if (strength.value !== "") strengthRange.value = strength.value;
  });
  $("#seed-random").addEventListener("click", () => {
    $("#seed").value = String(Math.floor(Math.random() * (Number($("#seed").max) + 1)));
    updatePreview();
  });
  form.addEventListener("input", (e) => {
    if (e.target === state.slots.byField.video_url.urlInput) updateControlRequired();
    updatePreview();
  });
  form.addEventListener("change", () => {
    updateControlRequired();
    updatePreview();
  });
  form.addEventListener("submit", submit);
}

function wireTask() {
  $("#cancel").addEventListener("click", cancelCurrent);
  $("#recent-refresh").addEventListener("click", refreshRecent);
  $("#result-video").addEventListener("error", () => {
    if (!$("#result-video").getAttribute("src")) return;
    showError(
      $("#task-error"),
      new ApiError("", "This browser cannot play the MP4 (H.264); use “Open video” to download it."),
      { info: true },
    );
  });
}

async function init() {
  state.api = createApi(API_BASE, () => $("#api-key").value.trim());
  wireKey();
  refreshHealth();
  try {
    state.schema = await loadSchema(SCHEMA_URL);
  } catch (err) {
    showError($("#form-error"), new ApiError("SchemaUnavailable", err.message));
    return;
  }
  buildForm();
  wireForm();
  wireTask();
  applyFunction();
  refreshAnnotators();
  refreshRecent();
  const match = /^#task=(.+)$/.exec(location.hash);
  if (match) openTask(decodeURIComponent(match[1]));
}

init();
