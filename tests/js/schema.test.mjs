import assert from "node:assert/strict";
import { test } from "node:test";

import {
  controlRequired,
  fieldsOf,
  finalStatuses,
  functionSpec,
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
