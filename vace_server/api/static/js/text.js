// The page's wording, keyed by the schema's values. Only words live here: which values exist,
// their defaults and limits come from the schema. A value without wording shows as itself.

export const FUNCTION_TEXT = {
  image_reference: ["Multi-image reference", "A video from 1–3 subject / scene images"],
  video_repainting: ["Video repainting", "Keep the motion, repaint the look"],
  video_edit: ["Local editing", "Edit the masked area of a video"],
  video_extension: ["Video extension", "Continue from frames or clips"],
  video_outpainting: ["Frame expansion", "Outpaint beyond the frame edges"],
};

export const CHOICE_TEXT = {
  control_condition: {
    posebodyface: "posebodyface: face expression + body motion",
    posebody: "posebody: body motion, no face",
    depth: "depth: composition and motion contours",
    scribble: "scribble: line-art structure",
  },
  size: {
    "1280*720": "1280 × 720 (16:9)",
    "720*1280": "720 × 1280 (9:16)",
    "960*960": "960 × 960 (1:1)",
    "832*1088": "832 × 1088 (3:4)",
    "1088*832": "1088 × 832 (4:3)",
  },
  obj_or_bg: { obj: "obj: a subject", bg: "bg: the background scene" },
  mask_type: { tracking: "tracking (follows the target)", fixed: "fixed" },
  expand_mode: { hull: "hull (polygon)", bbox: "bbox (rectangle)", original: "original" },
};

// The hint over the reference images of a function that takes only one.
export const SINGLE_REFERENCE_HINT = {
  video_edit: "A subject or background that replaces the content of the edit area.",
  video_repainting: "A subject that replaces the subject of the video.",
};

// The docs recommend prompt rewriting off for these two; elsewhere the server's default.
export const PROMPT_EXTEND_OFF = new Set(["video_repainting", "video_edit"]);

// Titles of the media slots, by wire field.
export const SLOT_TITLE = {
  video_url: "Input video",
  mask_image_url: "Mask image",
  mask_video_url: "Mask video",
  first_frame_url: "First frame",
  last_frame_url: "Last frame",
  first_clip_url: "First clip",
  last_clip_url: "Last clip",
};

/** The label of one choice of `field`, e.g. choiceText("size", "960*960"). */
export function choiceText(field, value) {
  return (CHOICE_TEXT[field] && CHOICE_TEXT[field][value]) || value;
}
