import assert from "node:assert/strict";
import { test } from "node:test";

import {
  ApiError,
  errorFromBody,
  policyDeadline,
  uploadFields,
} from "../../vace_server/api/static/js/api.js";

test("errorFromBody: a DashScope JSON error keeps code, message and request id", () => {
  const body = { code: "InvalidApiKey", message: "Invalid API-key provided.", request_id: "r1" };
  const err = errorFromBody(401, JSON.stringify(body));
  assert.ok(err instanceof ApiError);
  assert.deepEqual(
    [err.code, err.message, err.status, err.requestId],
    ["InvalidApiKey", "Invalid API-key provided.", 401, "r1"],
  );
});

test("errorFromBody: OSS-style XML, plain text, nothing", () => {
  const xml = errorFromBody(403, "<Error><Code>AccessDenied</Code><Message>no</Message></Error>");
  assert.deepEqual([xml.code, xml.message], ["AccessDenied", "no"]);
  const text = errorFromBody(502, `  ${"x".repeat(400)}  `);
  assert.deepEqual([text.code, text.message.length], ["HTTP 502", 300]);
  const none = errorFromBody(500, "");
  assert.deepEqual([none.code, none.message], ["HTTP 500", "The server answered with an error."]);
  assert.equal(errorFromBody(400, JSON.stringify({ message: "only a message" })).code, "HTTP 400");
});

test("policyDeadline: 30 s early, never less than 10 s ahead", () => {
  assert.equal(policyDeadline({ expire_in_seconds: 300 }, 1000), 1000 + 270_000);
  assert.equal(policyDeadline({ expire_in_seconds: 20 }, 0), 10_000);
  assert.equal(policyDeadline({}, 0), 270_000);
});

test("uploadFields: the policy's fields in order, the content type when known", () => {
  const policy = {
    oss_access_key_id: "id",
    policy: "p",
    signature: "s",
    x_oss_object_acl: "private",
    x_oss_forbid_overwrite: true,
  };
  assert.deepEqual(uploadFields(policy, "dir/a.png", "image/png"), [
    ["OSSAccessKeyId", "id"],
    ["policy", "p"],
    ["Signature", "s"],
    ["key", "dir/a.png"],
    ["x-oss-object-acl", "private"],
    ["x-oss-forbid-overwrite", "true"],
    ["success_action_status", "200"],
    ["x-oss-content-type", "image/png"],
  ]);
  assert.equal(uploadFields(policy, "k", "").length, 7);
});
