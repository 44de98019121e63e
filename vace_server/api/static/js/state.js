// The page's one mutable state object (every module reads and writes it here, nowhere else).

export const state = {
  schema: null, // GET /playground/schema.json, once loaded
  api: null, // the JSON caller of the public API (api.js's createApi)
  slots: {
    refs: [], // MediaSlot per reference image, in order
    byField: {}, // MediaSlot per single-media wire field (video_url, mask_image_url, …)
  },
  shownFunction: null, // the function the form shows: switching clears what the next one lacks
  annotators: null, // GET /playground/annotators.json: controls the live workers lack (or null)
  promptExtendTouched: false, // the user set prompt_extend: switching function keeps it
  previewQueued: false, // a request-preview redraw is scheduled for the next frame
  task: null, // the task shown: { id, timer, stopped, inFlight, lastStatus, cancelRequested }
  recentSeq: 0, // the latest recent-tasks refresh; older answers are dropped
  slotSeq: 0, // makes each media slot's element ids unique
  hints: {}, // the media slots' hints, from the schema's media limits (schema.js mediaHints)
};
