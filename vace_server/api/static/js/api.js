// HTTP: the public DashScope-compatible API, exactly as any other client calls it, and the
// temporary-upload flow for local files. `errorFromBody` and `uploadFields` are pure.

import { safeFileName } from "./format.js";

export class ApiError extends Error {
  constructor(code, message, { status = 0, requestId = "" } = {}) {
    super(message);
    this.code = code;
    this.status = status;
    this.requestId = requestId;
  }
}

/** The error an HTTP answer carries: DashScope JSON, OSS-style XML, or the text itself. */
export function errorFromBody(status, text) {
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (data && typeof data === "object" && (data.code || data.message)) {
    return new ApiError(data.code || `HTTP ${status}`, data.message || "", {
      status,
      requestId: data.request_id || "",
    });
  }
  // OSS-style XML error bodies, in case the upload host answers like OSS does.
  const code = /<Code>([^<]*)<\/Code>/.exec(text || "");
  const message = /<Message>([^<]*)<\/Message>/.exec(text || "");
  if (code || message) {
    return new ApiError(code ? code[1] : `HTTP ${status}`, message ? message[1] : "", { status });
  }
  const snippet = (text || "").trim().slice(0, 300);
  return new ApiError(`HTTP ${status}`, snippet || "The server answered with an error.", { status });
}

/** A JSON caller of `base` (a URL) that sends the key `getKey()` returns, when there is one. */
export function createApi(base, getKey) {
  return async function api(path, { method = "GET", body, headers = {} } = {}) {
    const h = new Headers(headers);
    const key = getKey();
    if (key) h.set("Authorization", `Bearer ${key}`);
    if (body !== undefined) h.set("Content-Type", "application/json");
    let response;
    try {
      response = await fetch(new URL(path, base), {
        method,
        headers: h,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
      });
    } catch (err) {
      throw new ApiError("NetworkError", `Could not reach the server (${err.message}).`);
    }
    const text = await response.text();
    if (!response.ok) throw errorFromBody(response.status, text);
    try {
      return text ? JSON.parse(text) : {};
    } catch {
      throw new ApiError("InvalidResponse", "The server's answer is not JSON.", { status: response.status });
    }
  };
}

/** When to fetch a fresh policy: 30 s before it expires, at least 10 s after `now`. */
export function policyDeadline(policy, now) {
  return now + Math.max(10, Number(policy.expire_in_seconds || 300) - 30) * 1000;
}

/** The form fields of one POST to the upload host, in order, the file last (as OSS needs). */
export function uploadFields(policy, key, contentType) {
  const fields = [
    ["OSSAccessKeyId", policy.oss_access_key_id],
    ["policy", policy.policy],
    ["Signature", policy.signature],
    ["key", key],
    ["x-oss-object-acl", policy.x_oss_object_acl],
    ["x-oss-forbid-overwrite", String(policy.x_oss_forbid_overwrite)],
    ["success_action_status", "200"],
  ];
  if (contentType) fields.push(["x-oss-content-type", contentType]);
  return fields;
}

function postUpload(url, body, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) onProgress(e.loaded / e.total);
    });
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 300) resolve();
      else reject(errorFromBody(xhr.status, xhr.responseText));
    });
    xhr.addEventListener("error", () =>
      reject(new ApiError("UploadFailed", `Could not reach the upload host ${url}.`)),
    );
    xhr.send(body);
  });
}

/** Uploads each slot's chosen file; returns Map(slot → "oss://<key>"). */
export async function uploadFiles(api, model, slots, report) {
  const uploaded = new Map();
  let policy = null;
  let policyUntil = 0;
  let used = new Set();
  for (const [i, slot] of slots.entries()) {
    if (!policy || Date.now() > policyUntil) {
      report("Getting an upload policy…");
      const answer = await api(`uploads?action=getPolicy&model=${encodeURIComponent(model)}`);
      policy = answer.data;
      if (!policy || !policy.upload_host) {
        throw new ApiError("InvalidResponse", "The upload policy has no upload_host.");
      }
      policyUntil = policyDeadline(policy, Date.now());
      used = new Set();
    }
    const file = slot.file;
    const maxMb = Number(policy.max_file_size_mb || 0);
    if (maxMb && file.size > maxMb * 1024 * 1024) {
      throw new ApiError("InvalidFile.Size", `${file.name} is larger than ${maxMb} MB.`);
    }
    const key = `${policy.upload_dir}/${safeFileName(file.name, used)}`;
    const body = new FormData();
    for (const [name, value] of uploadFields(policy, key, file.type)) body.append(name, value);
    body.append("file", file, key.split("/").pop()); // must be the last field
    const label = `Uploading ${file.name} (${i + 1} of ${slots.length})`;
    report(`${label}…`);
    await postUpload(policy.upload_host, body, (share) => report(`${label}: ${Math.round(share * 100)}%`));
    uploaded.set(slot, `oss://${key}`);
  }
  return uploaded;
}
