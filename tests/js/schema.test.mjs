import assert from "node:assert/strict";
import { test } from "node:test";

import {
  controlAvailability,
  controlHint,
  controlRequired,
  fieldsOf,
  finalStatuses,
  functionSpec,
  leftBehind,
  mediaHints,
  videoIsOptional,
} from "../../vace_server/api/static/js/schema.js";
import { CHOICE_TEXT, FUNCTION_TEXT, choiceText } from "../../vace_server/api/static/js/text.js";
import { schema } from "./schema_fixture.mjs";

test("fieldsOf: the inputs and parameters one function reads", () => {
  assert.deepEqual([...fieldsOf(schema, "video_outpainting")].sort(), [
    "bottom_scale",
    "duration",
    "left_scale",
    "right_scale",
    "top_scale",
    "video_url",
  ]);
  assert.ok(!fieldsOf(schema, "image_reference").has("video_url"));
  assert.throws(() => functionSpec(schema, "nope"), /unknown function nope/);
});

test("controlRequired: always for repainting, never for edit, with a video for extension", () => {
  const spec = (fn) => functionSpec(schema, fn);
  assert.equal(controlRequired(spec("video_repainting")), true);
  assert.equal(controlRequired(spec("video_edit"), { hasVideo: true }), false);
  assert.equal(controlRequired(spec("video_extension")), false);
  assert.equal(controlRequired(spec("video_extension"), { hasVideo: true }), true);
  assert.equal(controlRequired(spec("image_reference"), { hasVideo: true }), false);
});

test("only extension's video is optional", () => {
  const optional = schema.functions.filter(videoIsOptional).map((f) => f.name);
  assert.deepEqual(optional, ["video_extension"]);
});

test("every function, control condition and choice the server has a wording on the page", () => {
  for (const f of schema.functions) {
    assert.ok(FUNCTION_TEXT[f.name], `no wording for function ${f.name}`);
    for (const value of f.control ? f.control.choices : []) {
      assert.ok(CHOICE_TEXT.control_condition[value], `no wording for control ${value}`);
    }
  }
  for (const [field, values] of Object.entries(schema.choices)) {
    for (const value of values) assert.notEqual(choiceText(field, value), undefined);
    for (const value of values) assert.ok(CHOICE_TEXT[field][value], `no wording for ${field} ${value}`);
  }
  assert.equal(choiceText("size", "1*1"), "1*1"); // unknown: shown as itself
});

test("mediaHints: from the server's limits", () => {
  const hints = mediaHints(schema);
  assert.equal(hints.image, "JPG, JPEG, PNG, BMP, TIFF, WEBP; each side 360–2000 px; ≤ 10 MB");
  assert.equal(hints.video, "MP4, ≥ 16 fps, ≤ 50 MB; only the first 5 s are used");
  assert.equal(hints.clip, "MP4, ≥ 16 fps; ≤ 3 s");
  assert.match(hints.extension, /the output is 5 s in total/);
});

test("polling stops at every final status, UNKNOWN included", () => {
  assert.deepEqual([...finalStatuses(schema)].sort(), ["CANCELED", "FAILED", "SUCCEEDED", "UNKNOWN"]);
});

test("leftBehind: what the next function does not read, and a video_url that changes meaning", () => {
  const sorted = (set) => [...set].sort();
  assert.deepEqual(sorted(leftBehind(schema, "video_edit", "image_reference")), [
    "control_condition",
    "expand_mode",
    "expand_ratio",
    "mask_frame_id",
    "mask_image_url",
    "mask_type",
    "mask_video_url",
    "video_url",
  ]);
  // size, duration and the reference are read by both: they stay
  assert.ok(!leftBehind(schema, "image_reference", "video_edit").has("size"));
  assert.ok(!leftBehind(schema, "image_reference", "video_edit").has("ref_images_url"));
  // repainting's input video is not extension's optional motion reference (which would then
  // call for a control condition), nor the other way round
  assert.ok(leftBehind(schema, "video_repainting", "video_extension").has("video_url"));
  assert.ok(leftBehind(schema, "video_repainting", "video_extension").has("control_condition"));
  assert.ok(leftBehind(schema, "video_extension", "video_outpainting").has("video_url"));
  assert.ok(!leftBehind(schema, "video_repainting", "video_edit").has("video_url"));
  assert.ok(!leftBehind(schema, "video_repainting", "video_edit").has("control_condition"));
  assert.equal(leftBehind(schema, "video_edit", "video_edit").size, 0);
});

test("controlAvailability: unknown or installed everywhere marks nothing", () => {
  const none = { disabled: false, mark: "", missing: 0 };
  assert.deepEqual(controlAvailability(schema, null, "depth"), none);
  assert.deepEqual(controlAvailability(schema, { workers: 0, missing: {} }, "depth"), none);
  const others = { workers: 2, missing: { posebody: 2 } };
  assert.deepEqual(controlAvailability(schema, others, "depth"), none);
  // scribble is weight-free: never marked, whatever a worker says
  assert.deepEqual(controlAvailability(schema, { workers: 1, missing: { scribble: 1 } }, "scribble"), none);
  assert.equal(controlHint(schema, null, ["depth", "scribble"]), "");
});

test("controlAvailability: missing on every worker is disabled, on some is marked", () => {
  const all = controlAvailability(schema, { workers: 2, missing: { depth: 2 } }, "depth");
  assert.deepEqual(all, { disabled: true, mark: "not installed", missing: 2 });
  const some = controlAvailability(schema, { workers: 3, missing: { posebodyface: 1 } }, "posebodyface");
  assert.deepEqual(some, { disabled: false, mark: "not installed on 1 of 3 workers", missing: 1 });
});

test("controlHint: the missing choices by sub-folder, the setting and the docs section", () => {
  const live = { workers: 1, missing: { posebodyface: 1, posebody: 1, depth: 1 } };
  const hint = controlHint(schema, live, ["posebodyface", "posebody", "depth", "scribble"]);
  assert.ok(
    hint.startsWith(
      "Not installed: posebodyface, posebody (VACE_ANNOTATOR_DIR/pose/); depth (VACE_ANNOTATOR_DIR/depth/).",
    ),
    hint,
  );
  assert.ok(hint.includes("(see docs/model-inputs.md §5.6)"), hint);
  // only the function's own choices are named
  assert.ok(!controlHint(schema, live, ["depth"]).includes("pose"));
});
