// The schema the server serves, as tests/js/fixtures/schema.json holds it (kept equal to the
// server's by tests/api/test_playground_schema.py).
import { readFileSync } from "node:fs";

export const schema = JSON.parse(readFileSync(new URL("./fixtures/schema.json", import.meta.url), "utf8"));
