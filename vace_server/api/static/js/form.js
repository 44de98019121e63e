// The new-task form, built from the schema: function cards, choices, defaults and limits, the
// parts each function reads (`data-reads` in index.html names wire fields), and the reading
// of the form that body.js turns into a request.

import { ApiError } from "./api.js";
import { buildBody, formProblem } from "./body.js";
import { $, $$, fillSelect, isShown, setPartActive } from "./dom.js";
import {
  controlAvailability,
  controlHint,
  controlRequired,
  fieldsOf,
  functionSpec,
  leftBehind,
  mediaHints,
  videoIsOptional,
} from "./schema.js";
import { MediaSlot } from "./slots.js";
import { state } from "./state.js";
import { FUNCTION_TEXT, PROMPT_EXTEND_OFF, SINGLE_REFERENCE_HINT, SLOT_TITLE, choiceText } from "./text.js";

// Where each single-media slot lives, its kind and which hint it shows.
const SLOT_PLACES = [
  ["video_url", "video", "#video-slot", "video"],
  ["mask_image_url", "image", "#mask-image-slot", "maskImage"],
  ["mask_video_url", "video", "#mask-video-slot", "maskVideo"],
  ["first_frame_url", "image", "#extension-slots", "image"],
  ["last_frame_url", "image", "#extension-slots", "image"],
  ["first_clip_url", "video", "#extension-slots", "clip"],
  ["last_clip_url", "video", "#extension-slots", "lastClip"],
];
// The mask kind radio shows one of these at a time, so the one shown is required.
const ONE_AT_A_TIME = new Set(["mask_image_url", "mask_video_url"]);
// Named controls that are not request values (or are read on their own).
const NOT_VALUES = new Set(["api_key", "prompt", "function", "mask_kind"]);

const form = () => $("#new-task");
const control = (name) => form().elements.namedItem(name);

export function currentFunction() {
  return $("input[name=function]:checked", form()).value;
}

/** Fills the form from the schema; call once, before wiring events. */
export function buildForm() {
  const { schema } = state;
  $("#model-name").textContent = schema.model;
  buildFunctionCards(schema);
  for (const name of ["size", "mask_type", "expand_mode"]) {
    const options = schema.choices[name].map((v) => [v, choiceText(name, v)]);
    fillSelect(control(name), options, schema.defaults[name]);
  }
  for (const [key, range] of Object.entries(schema.numbers)) {
    const targets = [control(key), key === "strength" ? $("#strength-range") : null];
    for (const el of targets.filter(Boolean)) {
      el.min = String(range.low);
      el.max = String(range.high);
      el.value = String(range.default);
    }
  }
  const scale = schema.numbers.top_scale;
  $("#scales-range").textContent = `(${scale.low.toFixed(1)} – ${scale.high.toFixed(1)})`;
  for (const [key, range] of Object.entries(schema.integers)) {
    control(key).min = String(range.low);
    control(key).max = String(range.high);
  }
  control("mask_frame_id").value = String(schema.defaults.mask_frame_id);
  $("#prompt").maxLength = schema.limits.prompt_chars;
  const hints = { ...mediaHints(schema) };
  hints.lastClip = `${hints.clip}; same fps as the first clip`;
  $("#extension-hint").textContent = hints.extension;
  state.hints = hints;
  for (const [field, kind, where, hint] of SLOT_PLACES) {
    const title = SLOT_TITLE[field];
    state.slots.byField[field] = new MediaSlot($(where), { field, kind, title, hint: hints[hint] });
  }
  addRef();
}

function buildFunctionCards(schema) {
  const cards = schema.functions.map((spec, i) => {
    const [name, desc] = FUNCTION_TEXT[spec.name] || [spec.name, ""];
    const label = document.createElement("label");
    label.className = "function-card";
    const radio = document.createElement("input");
    radio.type = "radio";
    radio.name = "function";
    radio.value = spec.name;
    radio.checked = i === 0;
    const title = document.createElement("span");
    title.className = "function-name";
    title.textContent = name;
    const text = document.createElement("span");
    text.className = "function-desc";
    text.textContent = desc;
    label.append(radio, title, text);
    return label;
  });
  $("#functions").replaceChildren(...cards);
}

export function addRef() {
  const refs = state.slots.refs;
  const slot = new MediaSlot($("#refs"), {
    field: "ref_images_url",
    kind: "image",
    title: "Reference image",
    hint: state.hints.image,
    roles: state.schema.choices.obj_or_bg,
    onRemove: removeRef,
  });
  // A second and third image default to the other role a scene usually needs.
  if (refs.length > 0 && !refs.some((r) => r.role === "bg")) slot.roleSelect.value = "bg";
  refs.push(slot);
  applyFunction();
  return slot;
}

function removeRef(slot) {
  const refs = state.slots.refs;
  const index = refs.indexOf(slot);
  if (index < 0 || refs.length <= 1) return;
  refs.splice(index, 1);
  slot.root.remove();
  applyFunction();
  $("#refs-add").focus();
}

/** `data-when="name=value"`: the part shows only while that control has that value. */
function conditionHolds(when) {
  const [name, value] = when.split("=");
  return control(name).value === value;
}

/** Shows exactly the parts the chosen function reads and sets their rules. */
export function applyFunction() {
  const fn = currentFunction();
  const spec = functionSpec(state.schema, fn);
  if (state.shownFunction && state.shownFunction !== fn) clearFields(leftBehind(state.schema, state.shownFunction, fn));
  state.shownFunction = fn;
  const fields = fieldsOf(state.schema, fn);
  for (const el of $$("[data-reads], [data-when]", form())) {
    let on = !el.dataset.reads || el.dataset.reads.split(" ").some((f) => fields.has(f));
    if (on && el.dataset.when) on = conditionHolds(el.dataset.when);
    setPartActive(el, on);
  }
  for (const card of $$(".function-card", form())) {
    card.classList.toggle("selected", $("input", card).checked);
  }
  applyReferences(fn, spec);
  applyVideo(spec);
  for (const field of ONE_AT_A_TIME) state.slots.byField[field].setRequired(spec.one_of.includes(field));
  fillControlOptions(spec);
  if (!state.promptExtendTouched) {
    $("#prompt_extend").checked = !PROMPT_EXTEND_OFF.has(fn) && state.schema.defaults.prompt_extend;
  }
  updatePreview();
}

function applyReferences(fn, spec) {
  const refs = state.slots.refs;
  const max = spec.max_references;
  const multi = spec.parameters.includes("obj_or_bg");
  const required = spec.required.includes("ref_images_url");
  refs.forEach((slot, i) => {
    const visible = i < max;
    slot.setTitle(multi ? `Reference image ${i + 1}` : "Reference image");
    slot.setRequired(required && i === 0);
    slot.removeBtn.hidden = !visible || refs.length <= 1;
    slot.roleLabel.hidden = !multi;
    slot.setEnabled(visible);
  });
  $("#refs-add").hidden = refs.length >= max;
  $("#refs-legend").textContent = multi ? "Reference images" : "Reference image (optional)";
  const scenes = state.schema.limits.scene_references;
  $("#refs-hint").textContent = multi
    ? `1–${max} images: one subject per image on a plain background (obj), ` +
      `at most ${scenes === 1 ? "one" : scenes} background scene without subjects (bg).`
    : SINGLE_REFERENCE_HINT[fn] || "";
}

function applyVideo(spec) {
  const slot = state.slots.byField.video_url;
  const motion = videoIsOptional(spec);
  $("#video-legend").textContent = motion ? "Motion reference (optional)" : "Input video";
  slot.setTitle(motion ? "Motion reference video" : "Input video");
  slot.setRequired(spec.required.includes("video_url"));
  slot.hintEl.textContent = motion
    ? `${state.hints.video}; same fps and resolution as the frames / clips; needs a control condition`
    : state.hints.video;
}

/** Back to its default: a field of the function left (the next one must not send it). */
function clearFields(fields) {
  const { schema } = state;
  for (const field of fields) {
    const slot = state.slots.byField[field];
    if (slot) slot.clear();
    else if (field === "ref_images_url") {
      for (const extra of state.slots.refs.slice(1)) extra.root.remove();
      state.slots.refs.splice(1);
      const first = state.slots.refs[0];
      first.clear();
      if (first.roleSelect) first.roleSelect.value = schema.choices.obj_or_bg[0];
    } else if (control(field) instanceof Element) {
      const el = control(field);
      const initial = schema.numbers[field]?.default ?? schema.defaults[field] ?? "";
      el.value = String(initial);
      if (field === "strength") $("#strength-range").value = el.value;
    }
  }
}

/** The choices of the function, those no live worker can annotate disabled and marked. */
function fillControlOptions(spec) {
  if (!spec.control) return;
  const select = control("control_condition");
  const always = spec.control.required === "always";
  const options = [["", always ? "Choose…" : "none (no extraction)"]];
  for (const value of spec.control.choices) {
    const { disabled, mark } = controlAvailability(state.schema, state.annotators, value);
    const text = choiceText("control_condition", value);
    options.push([value, mark ? `${text} (${mark})` : text, disabled]);
  }
  fillSelect(select, options, select.value);
  const hint = controlHint(state.schema, state.annotators, spec.control.choices);
  $("#control-hint").textContent = hint;
  $("#control-hint").hidden = !hint;
  updateControlRequired();
}

/** control_condition's required mark, which follows the video slot for video_extension. */
export function updateControlRequired() {
  const spec = functionSpec(state.schema, currentFunction());
  const video = state.slots.byField.video_url;
  const required = controlRequired(spec, { hasVideo: video.isActive && !video.isEmpty });
  control("control_condition").required = required;
  $("#control-req").hidden = !required;
}

function numberValue(el) {
  if (el.value === "") return undefined;
  const n = Number(el.value);
  return Number.isFinite(n) ? n : undefined;
}

/** The form as body.js reads it; `uploaded` maps file slots to their oss:// URLs. */
export function readForm(uploaded = null) {
  const media = {};
  for (const [field, slot] of Object.entries(state.slots.byField)) {
    if (slot.isActive) media[field] = slot.value(uploaded);
  }
  const refs = state.slots.refs
    .filter((s) => s.isActive)
    .map((s) => ({ url: s.value(uploaded), role: s.role }));
  const values = {};
  for (const el of form().elements) {
    if (!el.name || NOT_VALUES.has(el.name) || el.type === "radio" || !isShown(el)) continue;
    if (el.type === "checkbox") values[el.name] = el.checked;
    else values[el.name] = el.type === "number" ? numberValue(el) : el.value;
  }
  return { function: currentFunction(), prompt: $("#prompt").value, refs, media, values };
}

export function activeSlots() {
  return [...state.slots.refs, ...Object.values(state.slots.byField)].filter((slot) => slot.isActive);
}

export function updatePreview() {
  if (state.previewQueued) return;
  state.previewQueued = true;
  requestAnimationFrame(() => {
    state.previewQueued = false;
    $("#request-preview").textContent = JSON.stringify(buildBody(state.schema, readForm()), null, 2);
    const count = [...$("#prompt").value].length;
    $("#prompt-count").textContent = `${count} / ${state.schema.limits.prompt_chars}`;
  });
}

/** Checks the browser cannot express with attributes: { focus, error } or null. */
export function extraChecks() {
  const problem = formProblem(state.schema, readForm());
  if (!problem) return null;
  let focus;
  if (problem.field === "prompt") focus = $("#prompt");
  else if (problem.field === "obj_or_bg") focus = state.slots.refs.find((s) => s.role === "bg").roleSelect;
  else focus = state.slots.byField[problem.field].focusTarget;
  return { focus, error: new ApiError("", problem.message) };
}
