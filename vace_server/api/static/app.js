// vace-server playground: a plain ES module, no build step, no dependencies.
// It talks to the public DashScope-compatible API exactly like any other client.

const MODEL = "wanx2.1-vace-plus";
const KEY_STORAGE = "vace-playground:api-key";
const POLL_MS = 1000;
const RETRY_MS = 3000;
const TERMINAL = new Set(["SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN"]);
const ACTIVE = new Set(["PENDING", "RUNNING"]);

// Resolved against the page, so a server mounted under a path prefix still works.
const API_BASE = new URL("api/v1/", document.baseURI);
const HEALTH_URL = new URL("health", document.baseURI);

const IMAGE_ACCEPT = "image/jpeg,image/png,image/bmp,image/tiff,image/webp,.jpg,.jpeg,.png,.bmp,.tif,.tiff,.webp";
const VIDEO_ACCEPT = "video/mp4,.mp4";
const IMAGE_HINT = "JPG, PNG, BMP, TIFF or WEBP; each side 360–2000 px; ≤ 10 MB";
const VIDEO_HINT = "MP4, ≥ 16 fps, ≤ 50 MB; only the first 5 s are used";
const CLIP_HINT = "MP4, ≥ 16 fps; ≤ 3 s";

// docs/contract.md §6: control_condition choices per function (required only for repainting, and
// for extension when a motion-reference video is given).
const CONTROL_LABELS = {
  posebodyface: "posebodyface: face expression + body motion",
  posebody: "posebody: body motion, no face",
  depth: "depth: composition and motion contours",
  scribble: "scribble: line-art structure",
};
const CONTROLS = {
  video_repainting: ["posebodyface", "posebody", "depth", "scribble"],
  video_edit: ["posebodyface", "depth"],
  video_extension: ["posebodyface", "depth"],
};
const MAX_REFS = { image_reference: 3, video_repainting: 1, video_edit: 1 };
// The docs recommend prompt rewriting off for these two.
const PROMPT_EXTEND_OFF = new Set(["video_repainting", "video_edit"]);

const STAGE_LABELS = {
  queued: "Queued",
  fetching: "Fetching media",
  preprocessing: "Preprocessing",
  denoising: "Denoising",
  decoding: "Decoding",
  encoding: "Encoding",
  uploading: "Storing the result",
};

const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

// ------------------------------------------------------------------------------ errors and HTTP

class ApiError extends Error {
  constructor(code, message, { status = 0, requestId = "" } = {}) {
    super(message);
    this.code = code;
    this.status = status;
    this.requestId = requestId;
  }
}

function errorFromBody(status, text) {
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (data && typeof data === "object" && (data.code || data.message)) {
    return new ApiError(data.code || `HTTP ${status}`, data.message || "", {
      status,
      requestId: data.request_id || "",
    });
  }
  // OSS-style XML error bodies, in case the upload host answers like OSS does.
  const code = /<Code>([^<]*)<\/Code>/.exec(text || "");
  const message = /<Message>([^<]*)<\/Message>/.exec(text || "");
  if (code || message) {
    return new ApiError(code ? code[1] : `HTTP ${status}`, message ? message[1] : "", { status });
  }
  const snippet = (text || "").trim().slice(0, 300);
  return new ApiError(`HTTP ${status}`, snippet || "The server answered with an error.", { status });
}

function apiKey() {
  return $("#api-key").value.trim();
}

async function api(path, { method = "GET", body, headers = {} } = {}) {
  const h = new Headers(headers);
  const key = apiKey();
  if (key) h.set("Authorization", `Bearer ${key}`);
  if (body !== undefined) h.set("Content-Type", "application/json");
  let response;
  try {
    response = await fetch(new URL(path, API_BASE), {
      method,
      headers: h,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch (err) {
    throw new ApiError("NetworkError", `Could not reach the server (${err.message}).`);
  }
  const text = await response.text();
  if (!response.ok) throw errorFromBody(response.status, text);
  try {
    return text ? JSON.parse(text) : {};
  } catch {
    throw new ApiError("InvalidResponse", "The server's answer is not JSON.", {
      status: response.status,
    });
  }
}

function showError(box, err, { info = false } = {}) {
  box.classList.toggle("info", info);
  const parts = [];
  if (err.code) {
    const code = document.createElement("strong");
    code.className = "error-code";
    code.textContent = err.code;
    parts.push(code);
  }
  const message = document.createElement("span");
  message.className = "error-message";
  message.textContent = err.message || "";
  parts.push(message);
  if (err.requestId) {
    const rid = document.createElement("small");
    rid.className = "error-request";
    rid.textContent = `request_id ${err.requestId}`;
    parts.push(rid);
  }
  box.replaceChildren(...parts);
  box.hidden = false;
}

function hideError(box) {
  box.hidden = true;
  box.replaceChildren();
}

// ------------------------------------------------------------------------------ formatting

function formatDuration(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return "";
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
}

function formatEpochMs(ms) {
  if (!Number.isFinite(ms)) return "";
  const date = new Date(ms);
  const today = new Date();
  return date.toDateString() === today.toDateString()
    ? date.toLocaleTimeString()
    : date.toLocaleString();
}

// ------------------------------------------------------------------------------ media slots

let slotSeq = 0;

/** One media input: a URL, or a local file uploaded through the temporary-upload flow. */
class MediaSlot {
  constructor(container, { field, kind, title, hint, role = false, onRemove = null }) {
    const id = ++slotSeq;
    this.field = field;
    this.kind = kind;
    this.required = false;
    this.enabled = true;
    this.root = $("#slot-template").content.firstElementChild.cloneNode(true);
    this.root.dataset.field = field;
    this.titleEl = $(".slot-title", this.root);
    this.titleEl.id = `slot-${id}-title`;
    this.root.setAttribute("role", "group");
    this.root.setAttribute("aria-labelledby", this.titleEl.id);
    this.reqEl = $(".req", this.root);
    this.group = $(".segmented", this.root);
    this.radios = $$("input[type=radio]", this.root);
    for (const radio of this.radios) {
      radio.name = `slot-${id}-source`;
      radio.addEventListener("change", () => this.sync());
    }
    this.urlInput = $(".slot-url", this.root);
    this.urlInput.id = `slot-${id}-url`;
    this.fileInput = $(".slot-file", this.root);
    this.fileInput.id = `slot-${id}-file`;
    this.fileInput.accept = kind === "image" ? IMAGE_ACCEPT : VIDEO_ACCEPT;
    $(".slot-hint", this.root).textContent = hint;
    this.removeBtn = $(".remove", this.root);
    if (onRemove) this.removeBtn.addEventListener("click", () => onRemove(this));
    this.roleSelect = null;
    if (role) {
      const label = document.createElement("label");
      label.className = "role";
      label.append("Role ");
      const select = document.createElement("select");
      select.id = `slot-${id}-role`;
      for (const [value, text] of [
        ["obj", "obj: a subject"],
        ["bg", "bg: the background scene"],
      ]) {
        select.append(new Option(text, value));
      }
      label.append(select);
      $(".slot-extra", this.root).append(label);
      this.roleSelect = select;
      this.roleLabel = label;
    }
    this.setTitle(title);
    container.append(this.root);
    this.sync();
  }

  setTitle(title) {
    this.title = title;
    this.titleEl.textContent = title;
    this.group.setAttribute("aria-label", `${title} source`);
    this.urlInput.setAttribute("aria-label", `${title} URL`);
    this.fileInput.setAttribute("aria-label", `${title} file`);
    this.removeBtn.setAttribute("aria-label", `Remove ${title.toLowerCase()}`);
    if (this.roleSelect) this.roleSelect.setAttribute("aria-label", `${title} role`);
  }

  setRequired(required) {
    this.required = required;
    this.reqEl.hidden = !required;
    this.sync();
  }

  /** A slot hidden on its own (an extra reference image) must not take part in validation. */
  setEnabled(enabled) {
    this.enabled = enabled;
    this.root.hidden = !enabled;
    for (const radio of this.radios) radio.disabled = !enabled;
    if (this.roleSelect) this.roleSelect.disabled = !enabled || this.roleLabel.hidden;
    this.sync();
  }

  get mode() {
    return this.radios.find((r) => r.checked)?.value || "url";
  }

  get file() {
    return this.fileInput.files && this.fileInput.files[0] ? this.fileInput.files[0] : null;
  }

  get url() {
    return this.urlInput.value.trim();
  }

  get role() {
    return this.roleSelect ? this.roleSelect.value : "obj";
  }

  get isActive() {
    // Inside a hidden or disabled part of the form, the slot does not count.
    return !this.root.closest("[hidden]") && !this.root.closest("fieldset:disabled");
  }

  get isEmpty() {
    return this.mode === "file" ? !this.file : !this.url;
  }

  /** The URL to send: `uploaded` maps slots to their oss:// URLs (after upload). */
  value(uploaded) {
    if (this.mode === "file") {
      if (!this.file) return null;
      return uploaded ? uploaded.get(this) || null : `oss://<uploaded on submit>/${this.file.name}`;
    }
    return this.url || null;
  }

  sync() {
    const byFile = this.mode === "file";
    this.urlInput.hidden = byFile;
    this.urlInput.disabled = byFile || !this.enabled;
    this.fileInput.hidden = !byFile;
    this.fileInput.disabled = !byFile || !this.enabled;
    this.urlInput.required = this.required && !byFile;
    this.fileInput.required = this.required && byFile;
  }
}

// ------------------------------------------------------------------------------ the form

const form = $("#new-task");
const refs = [];
let videoSlot;
let maskImageSlot;
let maskVideoSlot;
let extensionSlots = [];
let promptExtendTouched = false;

function currentFunction() {
  return $("input[name=function]:checked", form).value;
}

function addRef() {
  const slot = new MediaSlot($("#refs"), {
    field: "ref_images_url",
    kind: "image",
    title: "Reference image",
    hint: IMAGE_HINT,
    role: true,
    onRemove: removeRef,
  });
  // A second and third image default to the other role a scene usually needs.
  if (refs.length > 0 && slot.roleSelect && !refs.some((r) => r.role === "bg")) {
    slot.roleSelect.value = "bg";
  }
  refs.push(slot);
  applyFunction();
  return slot;
}

function removeRef(slot) {
  const index = refs.indexOf(slot);
  if (index < 0 || refs.length <= 1) return;
  refs.splice(index, 1);
  slot.root.remove();
  applyFunction();
  $("#refs-add").focus();
}

function setPartActive(el, on) {
  el.hidden = !on;
  if (el instanceof HTMLFieldSetElement) {
    el.disabled = !on;
  } else {
    for (const control of $$("input, select, textarea, button", el)) control.disabled = !on;
  }
}

function fillControlOptions(fn) {
  const select = $("#control_condition");
  const choices = CONTROLS[fn];
  if (!choices) return;
  const previous = select.value;
  const required = fn === "video_repainting";
  const options = [new Option(required ? "Choose…" : "none (no extraction)", "")];
  for (const value of choices) options.push(new Option(CONTROL_LABELS[value], value));
  select.replaceChildren(...options);
  if (choices.includes(previous)) select.value = previous;
  updateControlRequired();
}

function updateControlRequired() {
  const fn = currentFunction();
  const required =
    fn === "video_repainting" || (fn === "video_extension" && videoSlot && !videoSlot.isEmpty);
  $("#control_condition").required = required;
  $("#control-req").hidden = !required;
}

function applyFunction() {
  const fn = currentFunction();
  for (const el of $$("[data-for]", form)) {
    let on = el.dataset.for.split(" ").includes(fn);
    if (on && el.hasAttribute("data-tracking")) on = $("#mask_type").value === "tracking";
    setPartActive(el, on);
  }
  for (const card of $$(".function-card", form)) {
    card.classList.toggle("selected", $("input", card).checked);
  }

  // Reference images: 1–3 with roles (image_reference), else one optional subject image.
  const maxRefs = MAX_REFS[fn] || 0;
  const multi = fn === "image_reference";
  refs.forEach((slot, i) => {
    const visible = i < maxRefs;
    slot.setTitle(multi ? `Reference image ${i + 1}` : "Reference image");
    slot.setRequired(multi && i === 0);
    slot.removeBtn.hidden = !visible || refs.length <= 1;
    if (slot.roleLabel) slot.roleLabel.hidden = !multi;
    slot.setEnabled(visible);
  });
  $("#refs-add").hidden = refs.length >= maxRefs;
  $("#refs-legend").textContent = multi ? "Reference images" : "Reference image (optional)";
  $("#refs-hint").textContent = multi
    ? "1–3 images: one subject per image on a plain background (obj), at most one background scene without subjects (bg)."
    : fn === "video_edit"
      ? "A subject or background that replaces the content of the edit area."
      : "A subject that replaces the subject of the video.";

  // Input video: required except as video_extension's optional motion reference.
  if (videoSlot) {
    const motion = fn === "video_extension";
    $("#video-legend").textContent = motion ? "Motion reference (optional)" : "Input video";
    videoSlot.setTitle(motion ? "Motion reference video" : "Input video");
    videoSlot.setRequired(!motion);
    $(".slot-hint", videoSlot.root).textContent = motion
      ? `${VIDEO_HINT}; same fps and resolution as the frames / clips; needs a control condition`
      : VIDEO_HINT;
  }

  const maskKind = $("input[name=mask_kind]:checked", form).value;
  for (const part of $$("[data-mask]", form)) setPartActive(part, part.dataset.mask === maskKind);
  if (maskImageSlot) maskImageSlot.setRequired(true);
  if (maskVideoSlot) maskVideoSlot.setRequired(true);

  fillControlOptions(fn);
  if (!promptExtendTouched) $("#prompt_extend").checked = !PROMPT_EXTEND_OFF.has(fn);
  updatePreview();
}

function activeSlots() {
  const all = [...refs, videoSlot, maskImageSlot, maskVideoSlot, ...extensionSlots];
  return all.filter((slot) => slot && slot.isActive);
}

function numberValue(el) {
  if (!el || el.value === "") return undefined;
  const n = Number(el.value);
  return Number.isFinite(n) ? n : undefined;
}

/** The create body for the current form; `uploaded` maps file slots to their oss:// URLs. */
function buildBody(uploaded = null) {
  const fn = currentFunction();
  const input = { function: fn, prompt: $("#prompt").value };
  const parameters = {};
  const val = (slot) => (slot && slot.isActive ? slot.value(uploaded) : null);
  const set = (obj, key, value) => {
    if (value !== null && value !== undefined && value !== "") obj[key] = value;
  };
  const field = (name) => form.elements.namedItem(name);

  if (fn === "image_reference") {
    const rows = refs
      .filter((s) => s.isActive)
      .map((s) => ({ url: val(s), role: s.role }))
      .filter((r) => r.url);
    input.ref_images_url = rows.map((r) => r.url);
    parameters.obj_or_bg = rows.map((r) => r.role);
  } else if (fn === "video_repainting" || fn === "video_edit") {
    set(input, "video_url", val(videoSlot));
    const ref = refs.find((s) => s.isActive && val(s));
    if (ref) input.ref_images_url = [val(ref)];
  }
  if (fn === "video_edit") {
    if ($("input[name=mask_kind]:checked", form).value === "image") {
      set(input, "mask_image_url", val(maskImageSlot));
      set(input, "mask_frame_id", numberValue(field("mask_frame_id")));
    } else {
      set(input, "mask_video_url", val(maskVideoSlot));
    }
    parameters.mask_type = field("mask_type").value;
    if (parameters.mask_type === "tracking") {
      set(parameters, "expand_ratio", numberValue(field("expand_ratio")));
      parameters.expand_mode = field("expand_mode").value;
    }
  }
  if (fn === "video_extension") {
    for (const slot of extensionSlots) set(input, slot.field, val(slot));
    set(input, "video_url", val(videoSlot));
  }
  if (fn === "video_outpainting") {
    set(input, "video_url", val(videoSlot));
    for (const side of ["top", "bottom", "left", "right"]) {
      set(parameters, `${side}_scale`, numberValue(field(`${side}_scale`)));
    }
  }
  if (fn === "image_reference" || fn === "video_edit") parameters.size = field("size").value;
  if (CONTROLS[fn]) set(parameters, "control_condition", field("control_condition").value);
  if (fn === "video_repainting") set(parameters, "strength", numberValue(field("strength")));

  parameters.prompt_extend = $("#prompt_extend").checked;
  parameters.watermark = $("#watermark").checked;
  set(parameters, "seed", numberValue(field("seed")));
  return { model: MODEL, input, parameters };
}

let previewQueued = false;
function updatePreview() {
  if (previewQueued) return;
  previewQueued = true;
  requestAnimationFrame(() => {
    previewQueued = false;
    $("#request-preview").textContent = JSON.stringify(buildBody(), null, 2);
    const count = [...$("#prompt").value].length;
    $("#prompt-count").textContent = `${count} / 800`;
  });
}

/** Checks the browser cannot express with attributes; returns an error or null. */
function extraChecks() {
  const fn = currentFunction();
  if (fn === "video_extension" && extensionSlots.every((s) => s.isEmpty)) {
    return {
      focus: extensionSlots[0].mode === "file" ? extensionSlots[0].fileInput : extensionSlots[0].urlInput,
      error: new ApiError("", "Give at least one first / last frame or clip."),
    };
  }
  if (fn === "image_reference") {
    const roles = refs.filter((s) => s.isActive && !s.isEmpty).map((s) => s.role);
    if (roles.filter((r) => r === "bg").length > 1) {
      return {
        focus: refs.find((s) => s.role === "bg").roleSelect,
        error: new ApiError("", "At most one reference image can be the background (bg)."),
      };
    }
  }
  if (!$("#prompt").value.trim()) {
    return { focus: $("#prompt"), error: new ApiError("", "The prompt is required.") };
  }
  return null;
}

// ----------------------------------------------------------------- uploads (docs/contract.md §10)

function safeFileName(name, used) {
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

function postUpload(url, body, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) onProgress(e.loaded / e.total);
    });
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 300) resolve();
      else reject(errorFromBody(xhr.status, xhr.responseText));
    });
    xhr.addEventListener("error", () =>
      reject(new ApiError("UploadFailed", `Could not reach the upload host ${url}.`)),
    );
    xhr.send(body);
  });
}

/** Uploads every chosen local file; returns Map(slot → "oss://<key>"). */
async function uploadFiles(slots, report) {
  const uploaded = new Map();
  let policy = null;
  let policyUntil = 0;
  let used = new Set();
  for (const [i, slot] of slots.entries()) {
    if (!policy || Date.now() > policyUntil) {
      report("Getting an upload policy…");
      const answer = await api(`uploads?action=getPolicy&model=${encodeURIComponent(MODEL)}`);
      policy = answer.data;
      if (!policy || !policy.upload_host) {
        throw new ApiError("InvalidResponse", "The upload policy has no upload_host.");
      }
      policyUntil = Date.now() + Math.max(10, Number(policy.expire_in_seconds || 300) - 30) * 1000;
      used = new Set();
    }
    const file = slot.file;
    const maxMb = Number(policy.max_file_size_mb || 0);
    if (maxMb && file.size > maxMb * 1024 * 1024) {
      throw new ApiError("InvalidFile.Size", `${file.name} is larger than ${maxMb} MB.`);
    }
    const key = `${policy.upload_dir}/${safeFileName(file.name, used)}`;
    const body = new FormData();
    body.append("OSSAccessKeyId", policy.oss_access_key_id);
    body.append("policy", policy.policy);
    body.append("Signature", policy.signature);
    body.append("key", key);
    body.append("x-oss-object-acl", policy.x_oss_object_acl);
    body.append("x-oss-forbid-overwrite", String(policy.x_oss_forbid_overwrite));
    body.append("success_action_status", "200");
    if (file.type) body.append("x-oss-content-type", file.type);
    body.append("file", file, key.split("/").pop()); // must be the last field
    const label = `Uploading ${file.name} (${i + 1} of ${slots.length})`;
    report(`${label}…`);
    await postUpload(policy.upload_host, body, (share) =>
      report(`${label}: ${Math.round(share * 100)}%`),
    );
    uploaded.set(slot, `oss://${key}`);
  }
  return uploaded;
}

// ------------------------------------------------------------------------------ submit

async function submit(event) {
  event.preventDefault();
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
    const uploaded = await uploadFiles(files, status);
    const body = buildBody(uploaded);
    $("#request-preview").textContent = JSON.stringify(body, null, 2);
    const headers = { "X-DashScope-Async": "enable" };
    if (uploaded.size > 0 || JSON.stringify(body.input).includes('"oss://')) {
      headers["X-DashScope-OssResourceResolve"] = "enable";
    }
    status("Submitting…");
    const answer = await api("services/aigc/video-generation/video-synthesis", {
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

// ------------------------------------------------------------------------------ task view

let current = null; // { id, timer, stopped, inFlight, lastStatus, cancelRequested }

function stopPolling() {
  if (!current) return;
  current.stopped = true;
  clearTimeout(current.timer);
}

function openTask(id) {
  stopPolling();
  current = { id, timer: null, stopped: false, inFlight: false, lastStatus: null };
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
  poll(current);
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
  try {
    const answer = await api(`tasks/${encodeURIComponent(token.id)}`);
    if (token.stopped) return;
    renderTask(answer, token);
    const status = answer.output.task_status;
    if (token.lastStatus !== status) {
      updateRecentRow(token.id, status);
      if (TERMINAL.has(status) && token.lastStatus) refreshRecent();
    }
    token.lastStatus = status;
    if (TERMINAL.has(status)) delay = null;
  } catch (err) {
    if (token.stopped) return;
    showError($("#task-error"), err);
    delay = RETRY_MS;
  } finally {
    token.inFlight = false;
  }
  if (delay !== null && !token.stopped) token.timer = setTimeout(() => poll(token), delay);
}

function setBadge(el, status) {
  el.textContent = status;
  el.className = `badge status-${status.toLowerCase().replace(/[^a-z]/g, "")}`;
}

function renderTask(answer, token) {
  const out = answer.output || {};
  const status = out.task_status || "UNKNOWN";
  setBadge($("#task-status"), status);
  $("#task-submitted").textContent = out.submit_time || "–";
  $("#task-scheduled").textContent = out.scheduled_time || "–";
  $("#task-ended").textContent = out.end_time || "–";
  $("#cancel").disabled = !ACTIVE.has(status) || Boolean(token.cancelRequested);

  renderProgress(status, out.progress, token);

  const errorBox = $("#task-error");
  if (status === "FAILED") {
    showError(errorBox, new ApiError(out.code || "Failed", out.message || ""));
  } else if (status === "CANCELED") {
    showError(errorBox, new ApiError("", "The task was canceled."), { info: true });
  } else if (status === "UNKNOWN") {
    showError(
      errorBox,
      new ApiError(
        "UNKNOWN",
        "No such task for this key: it may have expired, or belong to another account.",
      ),
      { info: true },
    );
  } else {
    hideError(errorBox);
  }

  if (status === "SUCCEEDED" && out.video_url) renderResult(out, answer.usage);
  else $("#result").hidden = true;
}

function renderProgress(status, progress, token) {
  const box = $("#progress");
  if (!ACTIVE.has(status)) {
    box.hidden = true;
    return;
  }
  box.hidden = false;
  const bar = $("#progress-bar");
  const p = progress || {};
  const stage = p.stage || (status === "PENDING" ? "queued" : "");
  $("#progress-stage").textContent =
    STAGE_LABELS[stage] || (stage ? stage : status === "RUNNING" ? "Starting" : "Queued");
  const details = [];
  if (status === "PENDING") {
    bar.removeAttribute("value"); // indeterminate
    $("#progress-percent").textContent = "";
    if (Number.isFinite(p.queue_position)) details.push(`Position in queue: ${p.queue_position}`);
    if (p.message) details.push(p.message); // e.g. why no worker can run it
  } else if (Number.isFinite(p.percent)) {
    bar.value = p.percent;
    $("#progress-percent").textContent = `${Math.round(p.percent)}%`;
  } else {
    bar.removeAttribute("value");
    $("#progress-percent").textContent = "";
  }
  if (Number.isFinite(p.step) && Number.isFinite(p.total_steps)) {
    details.push(`Step ${p.step} / ${p.total_steps}`);
  }
  if (Number.isFinite(p.eta_seconds)) details.push(`ETA ${formatDuration(p.eta_seconds)}`);
  if (token.cancelRequested) details.push("Cancel requested…");
  $("#progress-detail").textContent = details.join(" · ");
}

function renderResult(out, usage) {
  const video = $("#result-video");
  $("#result").hidden = false;
  if (video.getAttribute("src") !== out.video_url) {
    video.src = out.video_url;
    $("#result-link").href = out.video_url;
  }
  const bits = [];
  if (usage) {
    if (usage.video_duration) bits.push(`${usage.video_duration} s`);
    if (usage.video_ratio) bits.push(usage.video_ratio);
    if (usage.video_count) bits.push(`${usage.video_count} video`);
  }
  $("#result-usage").textContent = bits.join(" · ");
  $("#result-orig").textContent = out.orig_prompt || "";
  $("#result-actual-row").hidden = !out.actual_prompt || out.actual_prompt === out.orig_prompt;
  $("#result-actual").textContent = out.actual_prompt || "";
}

async function cancelCurrent() {
  const token = current;
  if (!token) return;
  const button = $("#cancel");
  button.disabled = true;
  token.cancelRequested = true;
  try {
    await api(`tasks/${encodeURIComponent(token.id)}/cancel`, { method: "POST" });
    $("#progress-detail").textContent = "Cancel requested…";
    kick(token);
  } catch (err) {
    token.cancelRequested = false;
    showError($("#task-error"), err);
    kick(token);
  }
}

// ------------------------------------------------------------------------------ recent tasks

let recentSeq = 0;

async function refreshRecent() {
  const seq = ++recentSeq;
  const errorBox = $("#recent-error");
  const button = $("#recent-refresh");
  button.setAttribute("aria-busy", "true");
  try {
    const answer = await api("tasks?page_size=10");
    if (seq !== recentSeq) return;
    hideError(errorBox);
    const outputs = new Map((answer.tasks || []).map((t) => [t.task_id, t]));
    const items = (answer.data || []).map((entry) => recentItem(entry, outputs.get(entry.task_id)));
    $("#recent-list").replaceChildren(...items);
    $("#recent-empty").hidden = items.length > 0;
    markCurrentInList();
  } catch (err) {
    if (seq !== recentSeq) return;
    showError(errorBox, err);
  } finally {
    if (seq === recentSeq) button.removeAttribute("aria-busy");
  }
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
  const when = document.createElement("span");
  when.className = "task-row-time";
  const times = [formatEpochMs(entry.gmt_create)];
  if (Number.isFinite(entry.start_time) && Number.isFinite(entry.end_time)) {
    times.push(`ran ${formatDuration((entry.end_time - entry.start_time) / 1000)}`);
  }
  when.textContent = times.filter(Boolean).join(" · ");
  button.append(badge, id, when);
  const prompt = output && output.orig_prompt;
  if (prompt) {
    const p = document.createElement("span");
    p.className = "task-row-prompt";
    p.textContent = prompt;
    button.append(p);
  }
  if (output && output.code) {
    const p = document.createElement("span");
    p.className = "task-row-prompt error-text";
    p.textContent = `${output.code}: ${output.message || ""}`;
    button.append(p);
  }
  button.setAttribute("aria-label", `Open task ${entry.task_id}, ${entry.status}, ${when.textContent}`);
  li.append(button);
  return li;
}

function updateRecentRow(id, status) {
  const li = $$("#recent-list li").find((el) => el.dataset.taskId === id);
  if (!li) return;
  setBadge($(".badge", li), status);
}

function markCurrentInList() {
  for (const li of $$("#recent-list li")) {
    const button = $("button", li);
    if (current && li.dataset.taskId === current.id) button.setAttribute("aria-current", "true");
    else button.removeAttribute("aria-current");
  }
}

// ------------------------------------------------------------------------------ server status

async function refreshHealth() {
  const line = $("#server-status");
  try {
    const response = await fetch(HEALTH_URL, { cache: "no-store" });
    const health = await response.json();
    const models = Array.isArray(health.model) ? health.model.join(", ") : health.model;
    const workers = health.workers || [];
    const ready = workers.filter((w) => w.ready && w.alive).length;
    const parts = [`vace-server ${health.version || ""}`.trim()];
    if (models) parts.push(`model ${models}`);
    parts.push(`${ready} / ${workers.length} worker${workers.length === 1 ? "" : "s"} ready`);
    line.textContent = parts.join(" · ");
    line.classList.toggle("bad", workers.length === 0 || ready === 0);
    const warnings = [...(health.error ? [health.error] : []), ...(health.warnings || [])];
    const banner = $("#server-warning");
    banner.hidden = warnings.length === 0;
    banner.textContent = warnings.join(" ");
  } catch {
    line.textContent = "Server unreachable";
    line.classList.add("bad");
  }
}

// ------------------------------------------------------------------------------ start-up

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

function init() {
  videoSlot = new MediaSlot($("#video-slot"), {
    field: "video_url",
    kind: "video",
    title: "Input video",
    hint: VIDEO_HINT,
  });
  maskImageSlot = new MediaSlot($("#mask-image-slot"), {
    field: "mask_image_url",
    kind: "image",
    title: "Mask image",
    hint: "Image format, ≤ 10 MB, same resolution as the input video",
  });
  maskVideoSlot = new MediaSlot($("#mask-video-slot"), {
    field: "mask_video_url",
    kind: "video",
    title: "Mask video",
    hint: "Same format, fps, resolution and length as the input video",
  });
  extensionSlots = [
    ["first_frame_url", "image", "First frame", IMAGE_HINT],
    ["last_frame_url", "image", "Last frame", IMAGE_HINT],
    ["first_clip_url", "video", "First clip", CLIP_HINT],
    ["last_clip_url", "video", "Last clip", `${CLIP_HINT}; same fps as the first clip`],
  ].map(
    ([field, kind, title, hint]) =>
      new MediaSlot($("#extension-slots"), { field, kind, title, hint }),
  );
  addRef();

  const key = $("#api-key");
  key.value = loadKey();
  let keyTimer = null;
  key.addEventListener("input", () => {
    saveKey(key.value.trim());
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
    key.focus();
    refreshRecent();
  });

  for (const radio of $$("input[name=function], input[name=mask_kind]", form)) {
    radio.addEventListener("change", applyFunction);
  }
  $("#mask_type").addEventListener("change", applyFunction);
  $("#prompt_extend").addEventListener("change", () => {
    promptExtendTouched = true;
  });
  $("#refs-add").addEventListener("click", () => {
    const slot = addRef();
    slot.urlInput.focus();
  });
  const strength = $("#strength");
  const strengthRange = $("#strength-range");
  strengthRange.addEventListener("input", () => {
    strength.value = strengthRange.value;
  });
  strength.addEventListener("input", () => {
    if (strength.value !== "") strengthRange.value = strength.value;
  });
  $("#seed-random").addEventListener("click", () => {
    $("#seed").value = String(Math.floor(Math.random() * 2147483648));
    updatePreview();
  });
  form.addEventListener("input", (e) => {
    if (e.target === videoSlot.urlInput) updateControlRequired();
    updatePreview();
  });
  form.addEventListener("change", () => {
    updateControlRequired();
    updatePreview();
  });
  form.addEventListener("submit", submit);
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

  applyFunction();
  refreshHealth();
  refreshRecent();
  const match = /^#task=(.+)$/.exec(location.hash);
  if (match) openTask(decodeURIComponent(match[1]));
}

init();
