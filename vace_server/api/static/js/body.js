// The create request from a plain reading of the form, driven by the schema: the function's
// own inputs and parameters are sent, nothing else. Pure: no DOM.
//
// A reading is { function, prompt, refs: [{ url, role }], media: { field: url }, values:
// { name: value } }, holding only what is shown (a hidden control is not read at all).

import { functionSpec } from "./schema.js";

const COMMON_PARAMETERS = ["prompt_extend", "watermark", "seed"];

function present(value) {
  return value !== null && value !== undefined && value !== "";
}

function put(obj, key, value) {
  if (present(value)) obj[key] = value;
}

/** ref_images_url (+ obj_or_bg where the function reads roles) from the reference slots. */
function putReferences(spec, refs, input, parameters) {
  const rows = refs.filter((r) => present(r.url)).slice(0, spec.max_references);
  // A required list is sent even when empty, so the preview shows where it goes.
  if (rows.length === 0 && !spec.required.includes("ref_images_url")) return;
  input.ref_images_url = rows.map((r) => r.url);
  if (spec.parameters.includes("obj_or_bg")) parameters.obj_or_bg = rows.map((r) => r.role);
}

/** The JSON body of POST .../video-synthesis for `reading`. */
export function buildBody(schema, reading) {
  const spec = functionSpec(schema, reading.function);
  const input = { function: reading.function, prompt: reading.prompt };
  const parameters = {};
  const media = reading.media || {};
  const values = reading.values || {};
  for (const key of spec.inputs) {
    if (key === "ref_images_url") putReferences(spec, reading.refs || [], input, parameters);
    else if (key in media) put(input, key, media[key]);
    else put(input, key, values[key]);
  }
  for (const key of spec.parameters) {
    if (key !== "obj_or_bg") put(parameters, key, values[key]);
  }
  for (const key of COMMON_PARAMETERS) put(parameters, key, values[key]);
  return { model: schema.model, input, parameters };
}

/** Whether a media field (`*_url`) names an oss:// URL: X-DashScope-OssResourceResolve. */
export function needsOssResolve(body) {
  const urls = Object.entries(body.input)
    .filter(([key]) => key.endsWith("_url"))
    .flatMap(([, value]) => (Array.isArray(value) ? value : [value]));
  return urls.some((url) => String(url).startsWith("oss://"));
}

/**
 * What the browser cannot check with attributes: { field, message } or null. `field` is the
 * wire field to focus ("prompt", "obj_or_bg", or the first of a one_of group).
 */
export function formProblem(schema, reading) {
  const spec = functionSpec(schema, reading.function);
  if (!String(reading.prompt || "").trim()) return { field: "prompt", message: "The prompt is required." };
  const media = reading.media || {};
  const groups = spec.one_of.filter((key) => key in media);
  // A one_of group the form shows whole (extension's frames and clips); edit's masks are one
  // at a time, and the shown one is required by the browser.
  if (groups.length === spec.one_of.length && groups.length > 0 && groups.every((k) => !present(media[k]))) {
    return { field: groups[0], message: "Give at least one first / last frame or clip." };
  }
  if (spec.parameters.includes("obj_or_bg")) {
    const scenes = (reading.refs || []).filter((r) => present(r.url) && r.role === "bg").length;
    if (scenes > schema.limits.scene_references) {
      return {
        field: "obj_or_bg",
        message: `At most ${schema.limits.scene_references} reference image can be the background (bg).`,
      };
    }
  }
  return null;
}
