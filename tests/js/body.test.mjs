import assert from "node:assert/strict";
import { test } from "node:test";

import { buildBody, formProblem, needsOssResolve } from "../../vace_server/api/static/js/body.js";
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
