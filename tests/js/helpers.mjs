/**
 * Test helpers for the JavaScript client: a real daphne process serving example_project on a
 * free port, JWTs signed with node:crypto, broadcasts through the server's signed HTTP trigger,
 * and promise-based waits with deadlines (never fixed sleeps).
 */

import { spawn, execFile } from "node:child_process";
import { createHmac } from "node:crypto";
import { mkdtempSync, openSync, closeSync, readFileSync, rmSync, existsSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

import WebSocket from "ws";

import { Broadcasting } from "../../django_broadcasting/static/django_broadcasting/broadcasting.js";

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const PYTHON = process.env.VENV_PYTHON || join(REPO_ROOT, ".venv", "bin", "python");
export const JWT_SECRET = "js-client-test-jwt-secret-0123456789abcdef";
export const TRIGGER_SECRET = "js-client-test-trigger-secret-0123456789";
export { WebSocket };

const run = promisify(execFile);
// Variables the server reads as configuration: a server starts from a clean slate plus what a test passes.
const CONFIG_PREFIXES = ["BROADCAST_", "JWT_", "PUSHER_", "DJANGO_"];
const CONFIG_NAMES = new Set(["CORS_ALLOWED_ORIGINS", "DATABASE_PATH"]);

/** A TCP port nothing listens on right now (the kernel's pick for port 0). */
export function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = net.createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

function portOpen(port) {
  return new Promise((done) => {
    const socket = net.connect({ host: "127.0.0.1", port });
    socket.setTimeout(200);
    socket.once("connect", () => {
      socket.destroy();
      done(true);
    });
    socket.once("error", () => done(false));
    socket.once("timeout", () => {
      socket.destroy();
      done(false);
    });
  });
}

/** Poll `predicate()` (sync or async) until it is truthy; reject after `timeout` ms. */
export async function waitUntil(predicate, { timeout = 10000, interval = 25, what = "condition" } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await predicate();
    if (value) return value;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, interval));
  }
}

export function serverEnv(extra = {}) {
  const env = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (CONFIG_PREFIXES.some((p) => key.startsWith(p)) || CONFIG_NAMES.has(key)) continue;
    env[key] = value;
  }
  Object.assign(env, {
    DJANGO_SETTINGS_MODULE: "example_project.settings",
    PYTHONPATH: [REPO_ROOT, process.env.PYTHONPATH].filter(Boolean).join(":"),
    PYTHONUNBUFFERED: "1",
    JWT_SECRET,
    BROADCAST_TRIGGER_SECRET: TRIGGER_SECRET,
  });
  for (const [key, value] of Object.entries(extra)) env[key] = String(value);
  return env;
}

/** A temp folder with a migrated SQLite database; `cleanup()` removes it. */
export async function migratedDatabase() {
  const dir = mkdtempSync(join(tmpdir(), "broadcasting-js-"));
  const path = join(dir, "db.sqlite3");
  await run(PYTHON, [join(REPO_ROOT, "manage.py"), "migrate", "--noinput", "-v", "0"], {
    cwd: REPO_ROOT,
    env: serverEnv({ DATABASE_PATH: path }),
  });
  return { dir, path, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** uvicorn's `--ws` for `server: "uvicorn-front"`: this project's WebSocket protocol. */
export const FRONT_WS = "django_broadcasting.server.front.uvicorn:WebSocketProtocol";

/** The command line of each server kind (`port` filled in). */
function serverArgs(kind, port) {
  const app = "example_project.asgi:application";
  if (kind === "daphne") return ["-m", "daphne", "-b", "127.0.0.1", "-p", String(port), app];
  if (kind === "uvicorn-front") {
    return ["-m", "uvicorn", app, "--host", "127.0.0.1", "--port", String(port), "--ws", FRONT_WS];
  }
  throw new Error(`unknown server kind ${kind}`);
}

/**
 * One daphne process (or `server: "uvicorn-front"`: uvicorn on this project's WebSocket protocol)
 * serving example_project on 127.0.0.1:`port` (a free one by default).
 * `start()` resolves once the port accepts connections; `kill()` is a crash (SIGKILL);
 * `stop()` is a graceful shutdown (SIGTERM, then SIGKILL). Both signal the process group.
 */
export class ServerProcess {
  constructor({ port, env = {}, database, logDir, server = "daphne" } = {}) {
    this.kind = server;
    this.port = port;
    this.extraEnv = env;
    this.database = database;
    this.logDir = logDir || (database && database.dir) || mkdtempSync(join(tmpdir(), "broadcasting-js-log-"));
    this.child = null;
    this.starts = 0;
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  get wsUrl() {
    return `ws://127.0.0.1:${this.port}/ws`;
  }

  get pid() {
    return this.child ? this.child.pid : null;
  }

  async start({ timeout = 30000 } = {}) {
    if (this.child) throw new Error("server already running");
    if (!this.port) this.port = await freePort();
    if (await portOpen(this.port)) throw new Error(`port ${this.port} is already in use`);
    this.starts += 1;
    this.logPath = join(this.logDir, `${this.kind}-${this.port}-${this.starts}.log`);
    const log = openSync(this.logPath, "a");
    const env = serverEnv({
      BROADCAST_WEBSOCKET_HOST: "127.0.0.1",
      BROADCAST_WEBSOCKET_PORT: this.port,
      ...(this.database ? { DATABASE_PATH: this.database.path } : {}),
      ...this.extraEnv,
    });
    const child = spawn(
      PYTHON,
      serverArgs(this.kind, this.port),
      // Its own process group, so kill() reaches exactly this server and anything it forked.
      { cwd: REPO_ROOT, env, stdio: ["ignore", log, log], detached: true },
    );
    closeSync(log);
    this.child = child;
    let exited = null;
    child.once("exit", (code, signal) => {
      exited = { code, signal };
    });
    try {
      await waitUntil(
        async () => {
          if (exited) throw new Error(`${this.kind} exited (${exited.code ?? exited.signal}) before listening\n${this.logTail()}`);
          return portOpen(this.port);
        },
        { timeout, what: `${this.kind} on port ${this.port}` },
      );
    } catch (err) {
      this.kill();
      throw err;
    }
    return this;
  }

  _signal(signal) {
    if (!this.child) return;
    try {
      process.kill(-this.child.pid, signal);
    } catch {
      // already gone
    }
  }

  async _exit(child, timeout) {
    if (child.exitCode !== null || child.signalCode !== null) return true;
    return new Promise((done) => {
      const timer = setTimeout(() => done(false), timeout);
      child.once("exit", () => {
        clearTimeout(timer);
        done(true);
      });
    });
  }

  /** Stop at once, as a crash would; resolves when the process has exited. */
  async kill() {
    const child = this.child;
    if (!child) return;
    this._signal("SIGKILL");
    await this._exit(child, 10000);
    this.child = null;
  }

  /** Graceful shutdown (the server closes sockets with 1012), SIGKILL after `timeout`. */
  async stop({ timeout = 10000 } = {}) {
    const child = this.child;
    if (!child) return;
    this._signal("SIGTERM");
    if (!(await this._exit(child, timeout))) this._signal("SIGKILL");
    await this._exit(child, timeout);
    this._signal("SIGKILL");
    this.child = null;
  }

  logTail(lines = 40) {
    if (!this.logPath || !existsSync(this.logPath)) return "";
    return readFileSync(this.logPath, "utf8").split("\n").slice(-lines).join("\n");
  }
}

/** Start a server on a migrated temp database; `server.close()` stops it and removes the files. */
export async function startServer(env = {}, { server: kind = "daphne" } = {}) {
  const database = await migratedDatabase();
  const server = new ServerProcess({ env, database, server: kind });
  try {
    await server.start();
  } catch (err) {
    database.cleanup();
    throw err;
  }
  server.close = async () => {
    await server.stop();
    database.cleanup();
  };
  return server;
}

function base64url(value) {
  return Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString("base64url");
}

/** An HS256 JWT the way an application mints one (independent of the code under test). */
export function makeToken(sub, { ttl = 300, roles = [], secret = JWT_SECRET, ...claims } = {}) {
  const now = Math.floor(Date.now() / 1000);
  const payload = { sub: String(sub), aud: "websocket", iat: now, exp: now + ttl, roles, ...claims };
  const signingInput = `${base64url({ alg: "HS256", typ: "JWT" })}.${base64url(payload)}`;
  const signature = createHmac("sha256", secret).update(signingInput).digest("base64url");
  return `${signingInput}.${signature}`;
}

/** Broadcast through the server's signed trigger endpoint (POST /api/broadcast/events). */
export async function publish(server, channel, event, data = {}, { socketId } = {}) {
  const body = JSON.stringify({ channel, event, data, ...(socketId ? { socket_id: socketId } : {}) });
  const timestamp = String(Math.floor(Date.now() / 1000));
  const signature = createHmac("sha256", TRIGGER_SECRET).update(`${timestamp}.${body}`).digest("hex");
  const response = await fetch(`${server.url}/api/broadcast/events`, {
    method: "POST",
    headers: {
      "Content-Type": "application/json",
      "X-Broadcast-Timestamp": timestamp,
      "X-Broadcast-Signature": `sha256=${signature}`,
    },
    body,
  });
  if (response.status !== 202) throw new Error(`trigger answered ${response.status}: ${await response.text()}`);
  return response.json();
}

/**
 * Records the calls of a callback; `next()` resolves with the next unseen call's arguments
 * (or rejects after `timeout` ms), so tests wait for events instead of sleeping.
 */
export class Recorder {
  constructor(name = "callback") {
    this.name = name;
    this.calls = [];
    this._read = 0;
    this._waiters = [];
    this.fn = (...args) => {
      this.calls.push(args);
      for (const waiter of this._waiters.splice(0)) waiter();
    };
  }

  get count() {
    return this.calls.length;
  }

  /** The arguments of the next call not yet returned by next(); its first argument by default. */
  async next({ timeout = 10000, all = false } = {}) {
    const deadline = Date.now() + timeout;
    while (this._read >= this.calls.length) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no call of ${this.name} within ${timeout} ms (saw ${this.calls.length})`);
      await new Promise((done) => {
        const timer = setTimeout(done, left);
        this._waiters.push(() => {
          clearTimeout(timer);
          done();
        });
      });
    }
    const args = this.calls[this._read++];
    return all ? args : args[0];
  }

  /** Forget the calls so far: next() waits for a new one. */
  skip() {
    this._read = this.calls.length;
  }

  /** Skip calls until one whose first argument satisfies `predicate`. */
  async until(predicate, options = {}) {
    for (;;) {
      const args = await this.next({ ...options, all: true });
      if (predicate(...args)) return options.all ? args : args[0];
    }
  }
}

/** A client on `server` with fast reconnects; resolves once the greeting arrived. */
export async function connectClient(server, options = {}) {
  const client = new Broadcasting({
    url: server.wsUrl,
    WebSocket,
    reconnect: { minDelay: 100, maxDelay: 1000 },
    ...options,
  });
  if (options.autoConnect !== false) await connected(client);
  return client;
}

/** Resolves when `client` is (or next becomes) connected. */
export function connected(client, timeout = 10000) {
  if (client.state === "connected") return Promise.resolve(client);
  return new Promise((done, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`client not connected within ${timeout} ms (state ${client.state})`));
    }, timeout);
    const off = client.on("connected", () => {
      clearTimeout(timer);
      off();
      done(client);
    });
  });
}

/** Resolves with the first call of the callback that `register(cb)` installs. */
export function once(register, { timeout = 10000, what = "callback" } = {}) {
  return new Promise((done, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${what} within ${timeout} ms`)), timeout);
    let fired = false;
    register((...args) => {
      if (fired) return;
      fired = true;
      clearTimeout(timer);
      done(args.length > 1 ? args : args[0]);
    });
  });
}
