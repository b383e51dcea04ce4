/**
 * docs/javascript.md's runnable example runs: every ```javascript block (fragments are fenced
 * ```js instead) is run by Node from the repository root against a real server, and the
 * ```sh block's `manage.py shell -c` broadcast is what makes it print and exit.
 */

import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";

import { PYTHON, REPO_ROOT, serverEnv, startServer, waitUntil } from "./helpers.mjs";

const PAGE = readFileSync(join(REPO_ROOT, "docs", "javascript.md"), "utf8");
const run = promisify(execFile);
let server;

before(async () => {
  server = await startServer();
});

after(async () => {
  if (server) await server.close();
});

function blocks(language) {
  return [...PAGE.matchAll(new RegExp("^```" + language + "\\n([\\s\\S]*?)^```", "gm"))].map((m) => m[1]);
}

test("the Node example prints the broadcast sent with the documented shell command", async () => {
  const [example] = blocks("javascript");
  assert.ok(example, "docs/javascript.md has a ```javascript example");
  const [shell] = blocks("sh");
  const code = /shell -c "([\s\S]*?)"/.exec(shell)?.[1];
  assert.ok(code, "the ```sh block runs manage.py shell -c");

  const child = spawn(process.execPath, ["--input-type=module", "-e", example], {
    cwd: REPO_ROOT,
    env: { ...process.env, BROADCAST_URL: server.wsUrl },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout.on("data", (chunk) => (out += chunk));
  child.stderr.on("data", (chunk) => (err += chunk));
  const exited = new Promise((done) => child.once("exit", (status) => done(status)));
  try {
    await waitUntil(() => out.includes("subscribed to general"), { what: `the example to subscribe (${err})` });
    await run(PYTHON, [join(REPO_ROOT, "manage.py"), "shell", "-c", code], {
      cwd: REPO_ROOT,
      env: serverEnv({ BROADCAST_WEBSOCKET_PORT: server.port, DATABASE_PATH: server.database.path }),
    });
    const status = await Promise.race([exited, waitUntil(() => false, { timeout: 10000, what: "the example to exit" })]);
    assert.equal(status, 0, err);
    assert.match(out, /^subscribed to general; socket id \S+\ngeneral announcement: hello\n$/);
  } finally {
    child.kill();
  }
});
