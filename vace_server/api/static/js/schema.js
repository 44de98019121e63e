// The form's source of truth: /playground/schema.json, built by the server from the create
// validator's own tables (vace_server/api/playground_schema.py). Pure readers, no DOM.

/** Fetches the schema; throws an Error saying why when it cannot. */
export async function loadSchema(url) {
  const response = await fetch(url, { cache: "no-store" });
  if (!response.ok) throw new Error(`The form's schema is unavailable (HTTP ${response.status}).`);
  return response.json();
}

/** The entry of one function: inputs, parameters, required, one_of, control, max_references. */
export function functionSpec(schema, fn) {
  const spec = schema.functions.find((f) => f.name === fn);
  if (!spec) throw new Error(`unknown function ${fn}`);
  return spec;
}

/** Every wire field (input or parameter) the function reads. */
export function fieldsOf(schema, fn) {
  const spec = functionSpec(schema, fn);
  return new Set([...spec.inputs, ...spec.parameters]);
}

/** Whether control_condition must be given: always, or (extension) with a motion video. */
export function controlRequired(spec, { hasVideo = false } = {}) {
  if (!spec.control) return false;
  return spec.control.required === "always" || (spec.control.required === "with_video_url" && hasVideo);
}

/** A video_url the function reads without requiring it (extension's motion reference). */
export function videoIsOptional(spec) {
  return spec.inputs.includes("video_url") && !spec.required.includes("video_url");
}

export function finalStatuses(schema) {
  return new Set(schema.statuses.final);
}

/** Stage name -> what a person is shown, from the server's progress vocabulary. */
export function stageLabels(schema) {
  return Object.fromEntries(schema.stages.map((stage) => [stage.name, stage.label]));
}

export function activeStatuses(schema) {
  return new Set(schema.statuses.active);
}

function megabytes(bytes) {
  const mb = bytes / (1024 * 1024);
  return Number.isInteger(mb) ? `${mb} MB` : `${mb.toFixed(1)} MB`;
}

/** The hints under the media slots, from the server's media limits. */
export function mediaHints(schema) {
  const { image, video, clip } = schema.media;
  const sides = `${image.min_side}–${image.max_side} px`;
  return {
    image: `${image.formats}; each side ${sides}; ≤ ${megabytes(image.max_bytes)}`,
    video:
      `MP4, ≥ ${video.min_fps} fps, ≤ ${megabytes(video.max_bytes)}; ` +
      `only the first ${video.seconds} s are used`,
    clip: `MP4, ≥ ${video.min_fps} fps; ≤ ${clip.seconds} s`,
    maskImage: `Image format, ≤ ${megabytes(image.max_bytes)}, same resolution as the input video`,
    maskVideo: "Same format, fps, resolution and length as the input video",
    extension:
      `Clips: MP4, ≤ ${clip.seconds} s in total. Generation runs forward from the first frame / clip ` +
      `and backward from the last; the output is ${schema.limits.duration_seconds} s in total.`,
  };
}
