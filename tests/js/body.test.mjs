import assert from "node:assert/strict";
import { test } from "node:test";

import { buildBody, formProblem, needsOssResolve } from "../../vace_server/api/static/js/body.js";
import { fieldsOf, leftBehind } from "../../vace_server/api/static/js/schema.js";
import { schema } from "./schema_fixture.mjs";

const common = { prompt_extend: true, watermark: false };

test("image_reference sends its references with their roles, size and the common parameters", () => {
  const body = buildBody(schema, {
    function: "image_reference",
    prompt: "a red ball",
    refs: [
      { url: "http://m/1.png", role: "obj" },
      { url: null, role: "obj" }, // an empty slot is left out
      { url: "http://m/2.png", role: "bg" },
    ],
    media: {},
    values: { size: "960*960", ...common, seed: 7 },
  });
  assert.deepEqual(body, {
    model: "wanx2.1-vace-plus",
    input: {
      function: "image_reference",
      prompt: "a red ball",
      ref_images_url: ["http://m/1.png", "http://m/2.png"],
    },
    parameters: { obj_or_bg: ["obj", "bg"], size: "960*960", ...common, seed: 7 },
  });
});

test("image_reference keeps at most the schema's max_references images", () => {
  const refs = [1, 2, 3, 4].map((n) => ({ url: `http://m/${n}.png`, role: "obj" }));
  const body = buildBody(schema, { function: "image_reference", prompt: "p", refs, values: common });
  assert.equal(body.input.ref_images_url.length, 3);
  assert.equal(body.parameters.obj_or_bg.length, 3);
});

test("repainting sends only its own fields: no size, no roles, one reference at most", () => {
  const body = buildBody(schema, {
    function: "video_repainting",
    prompt: "steampunk car",
    refs: [{ url: "http://m/1.png", role: "bg" }],
    media: { video_url: "http://m/car.mp4" },
    // values of controls the function does not read are ignored even when present
    values: {
      control_condition: "depth",
      strength: 0.6,
      size: "960*960",
      mask_type: "fixed",
      prompt_extend: false,
      watermark: false,
    },
  });
  assert.deepEqual(body.input, {
    function: "video_repainting",
    prompt: "steampunk car",
    video_url: "http://m/car.mp4",
    ref_images_url: ["http://m/1.png"],
  });
  assert.deepEqual(body.parameters, {
    control_condition: "depth",
    strength: 0.6,
    prompt_extend: false,
    watermark: false,
  });
});

test("an optional empty reference list, an empty control and an empty seed are not sent", () => {
  const body = buildBody(schema, {
    function: "video_edit",
    prompt: "p",
    refs: [{ url: null, role: "obj" }],
    media: { video_url: "http://m/v.mp4", mask_image_url: "http://m/m.png" },
    values: {
      mask_frame_id: 1,
      control_condition: "",
      mask_type: "tracking",
      expand_ratio: 0.05,
      expand_mode: "hull",
      size: "1280*720",
      seed: undefined,
      ...common,
    },
  });
  assert.deepEqual(body.input, {
    function: "video_edit",
    prompt: "p",
    video_url: "http://m/v.mp4",
    mask_image_url: "http://m/m.png",
    mask_frame_id: 1,
  });
  assert.deepEqual(body.parameters, {
    mask_type: "tracking",
    expand_ratio: 0.05,
    expand_mode: "hull",
    size: "1280*720",
    ...common,
  });
});

test("extension sends the given frames and clips and the optional motion video", () => {
  const body = buildBody(schema, {
    function: "video_extension",
    prompt: "p",
    media: {
      first_frame_url: "http://m/f.png",
      last_frame_url: null,
      first_clip_url: null,
      last_clip_url: "http://m/l.mp4",
      video_url: null,
    },
    values: { control_condition: "", ...common },
  });
  assert.deepEqual(body.input, {
    function: "video_extension",
    prompt: "p",
    first_frame_url: "http://m/f.png",
    last_clip_url: "http://m/l.mp4",
  });
  assert.deepEqual(body.parameters, common);
});

test("outpainting sends its four scales", () => {
  const values = { top_scale: 1.5, bottom_scale: 1, left_scale: 1, right_scale: 2, ...common };
  const media = { video_url: "http://m/v.mp4" };
  const body = buildBody(schema, { function: "video_outpainting", prompt: "p", media, values });
  assert.deepEqual(body.parameters, values);
});

test("needsOssResolve spots oss:// URLs in the media fields, not in the prompt", () => {
  assert.equal(needsOssResolve({ input: { function: "f", prompt: "oss://d/k.png is text here" } }), false);
  assert.equal(needsOssResolve({ input: { ref_images_url: ["http://a", "oss://d/k.png"] } }), true);
  assert.equal(needsOssResolve({ input: { video_url: "oss://d/k.mp4" } }), true);
  assert.equal(needsOssResolve({ input: { video_url: "http://a/k.mp4", mask_frame_id: 1 } }), false);
});

test("formProblem: prompt, extension's at-least-one, at most one background", () => {
  assert.deepEqual(formProblem(schema, { function: "video_outpainting", prompt: "  " }), {
    field: "prompt",
    message: "The prompt is required.",
  });
  const empty = { first_frame_url: null, last_frame_url: null, first_clip_url: null, last_clip_url: null };
  const extension = (media) => formProblem(schema, { function: "video_extension", prompt: "p", media });
  assert.equal(extension(empty).field, "first_frame_url");
  assert.equal(extension({ ...empty, last_clip_url: "http://c" }), null);
  // video_edit shows one mask at a time (the browser requires the shown one): no check here
  const edit = { function: "video_edit", prompt: "p", media: { mask_image_url: null } };
  assert.equal(formProblem(schema, edit), null);
  const refs = [{ url: "http://a", role: "bg" }, { url: "http://b", role: "bg" }];
  assert.deepEqual(formProblem(schema, { function: "image_reference", prompt: "p", refs }), {
    field: "obj_or_bg",
    message: "At most 1 reference image can be the background (bg).",
  });
  const oneScene = [refs[0], { url: null, role: "bg" }];
  assert.equal(formProblem(schema, { function: "image_reference", prompt: "p", refs: oneScene }), null);
});

// The form's switch, as form.js does it: the fields leftBehind names go back to empty, the
// shared ones stay; readForm then reads only what the new function shows.
function switchReading(reading, to) {
  const drop = leftBehind(schema, reading.function, to);
  const shows = fieldsOf(schema, to);
  const keep = (obj) => Object.fromEntries(Object.entries(obj).filter(([k]) => !drop.has(k) && shows.has(k)));
  const own = fieldsOf(schema, reading.function);
  const common = Object.fromEntries(Object.entries(reading.values).filter(([k]) => !own.has(k)));
  return {
    ...reading,
    function: to,
    refs: drop.has("ref_images_url") ? [] : reading.refs,
    media: keep(reading.media),
    values: { ...common, ...keep(reading.values) },
  };
}

test("across a function switch nothing of the previous function is sent, back again included", () => {
  const edit = {
    function: "video_edit",
    prompt: "a cat",
    refs: [{ url: "http://m/ref.png", role: "obj" }],
    media: { video_url: "http://m/v.mp4", mask_image_url: "http://m/mask.png" },
    values: { mask_frame_id: 3, mask_type: "fixed", size: "960*960", ...common, seed: 5 },
  };
  // even a reading that still holds edit's media: image_reference sends only its own fields
  const stale = buildBody(schema, { ...edit, function: "image_reference" });
  assert.deepEqual(stale.input, {
    function: "image_reference",
    prompt: "a cat",
    ref_images_url: ["http://m/ref.png"],
  });
  const ref = switchReading(edit, "image_reference");
  const body = buildBody(schema, ref);
  assert.deepEqual(body.input, stale.input);
  assert.deepEqual(body.parameters, { obj_or_bg: ["obj"], size: "960*960", ...common, seed: 5 });
  // back to video_edit: the mask, its frame and the input video were cleared on the way out
  const back = buildBody(schema, switchReading(ref, "video_edit"));
  assert.deepEqual(back.input, { function: "video_edit", prompt: "a cat", ref_images_url: ["http://m/ref.png"] });
  assert.equal(back.parameters.mask_type, undefined);
  assert.equal(back.parameters.size, "960*960");
});

test("repainting's input video is not sent as extension's motion reference", () => {
  const repaint = {
    function: "video_repainting",
    prompt: "p",
    refs: [],
    media: { video_url: "http://m/car.mp4" },
    values: { control_condition: "depth", strength: 0.6, ...common },
  };
  const ext = switchReading(repaint, "video_extension");
  ext.media.first_frame_url = "http://m/first.png";
  const body = buildBody(schema, ext);
  assert.deepEqual(body.input, { function: "video_extension", prompt: "p", first_frame_url: "http://m/first.png" });
  // the control condition was extracted from that video: it goes with it
  assert.equal(body.parameters.control_condition, undefined);
  assert.equal(body.parameters.strength, undefined);
});
