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

/**
 * The fields `from` reads that must not carry over to `to`: those `to` does not read, and
 * video_url where it changes meaning (an input video in one, an optional motion reference
 * that calls for a control condition in the other) with the control condition read from it.
 * Shared fields (references, seed, size,
 * a control condition `to` also offers) are kept.
 */
export function leftBehind(schema, from, to) {
  const kept = fieldsOf(schema, to);
  const before = functionSpec(schema, from);
  const after = functionSpec(schema, to);
  const out = new Set([...fieldsOf(schema, from)].filter((field) => !kept.has(field)));
  const both = kept.has("video_url") && before.inputs.includes("video_url");
  if (both && videoIsOptional(before) !== videoIsOptional(after)) {
    // ... and the control condition extracted from that video goes with it
    out.add("video_url");
    out.add("control_condition");
  }
  return out;
}

/**
 * How one control_condition choice stands on the live workers (`live`: the answer of
 * /playground/annotators.json, or null while unknown): { disabled, mark, missing }. A choice
 * no counted worker can annotate is disabled; one that only some lack stays enabled, marked.
 */
export function controlAvailability(schema, live, value) {
  const folder = schema.annotators.checkpoints[value];
  const workers = live ? live.workers : 0;
  const missing = live && live.missing ? live.missing[value] || 0 : 0;
  if (!folder || workers === 0 || missing === 0) return { disabled: false, mark: "", missing: 0 };
  if (missing >= workers) return { disabled: true, mark: "not installed", missing };
  return { disabled: false, mark: `not installed on ${missing} of ${workers} workers`, missing };
}

/** The hint under the control select: which of `choices` lack a checkpoint, in which
 * sub-folder of the annotator setting, and the docs section; "" when none is marked. */
export function controlHint(schema, live, choices) {
  const byFolder = new Map();
  for (const value of choices) {
    if (!controlAvailability(schema, live, value).missing) continue;
    const folder = schema.annotators.checkpoints[value];
    byFolder.set(folder, [...(byFolder.get(folder) || []), value]);
  }
  if (byFolder.size === 0) return "";
  const { setting, docs } = schema.annotators;
  const parts = [...byFolder].map(([folder, values]) => `${values.join(", ")} (${setting}/${folder})`);
  return (
    `Not installed: ${parts.join("; ")}. The server's operator puts the checkpoints there ` +
    `(see ${docs}) and restarts the workers; until then a task that needs one fails.`
  );
}
