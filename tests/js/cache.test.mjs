/**
 * Cache channels with the real npm laravel-echo + pusher-js against real daphne processes: a late
 * subscriber gets the last event right after subscription_succeeded, an empty cache answers
 * `pusher:cache_miss`, an encrypted cache channel keeps its (sealed) last event for Echo to
 * decrypt, and two servers sharing Redis share the cache.
 */

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import net from "node:net";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";

import Pusher from "pusher-js";

import { PYTHON, REPO_ROOT, Recorder, makeToken, once, publish, serverEnv } from "./helpers.mjs";
import { APP_KEY, echoConnected, makeEcho, startPusherServer, trigger } from "./pusher_helpers.mjs";

const run = promisify(execFile);
const MASTER_KEY = randomBytes(32).toString("base64");
const REDIS_URL = process.env.BROADCAST_TEST_REDIS_URL || "redis://127.0.0.1:6379/0";

const servers = [];
const closers = [];

after(async () => {
  for (const close of closers) close();
  for (const s of servers) await s.close();
});

async function start(env = {}) {
  const server = await startPusherServer({ PUSHER_ENCRYPTION_MASTER_KEY_BASE64: MASTER_KEY, ...env });
  servers.push(server);
  return server;
}

async function echo(server, userId = null) {
  const e = makeEcho(server, { userId });
  closers.push(() => e.disconnect());
  await echoConnected(e);
  return e;
}

/** A plain pusher-js client that records every event of `channelName` in arrival order. */
async function pusherClient(server, channelName, { userId = null } = {}) {
  const port = Number(new URL(server.url).port);
  const client = new Pusher(APP_KEY, {
    cluster: "mt1",
    wsHost: "127.0.0.1",
    wsPort: port,
    forceTLS: false,
    enabledTransports: ["ws"],
    disableStats: true,
    channelAuthorization: {
      endpoint: `${server.url}/broadcasting/auth`,
      headers: userId === null ? {} : { Authorization: `Bearer ${makeToken(userId)}` },
    },
  });
  closers.push(() => client.disconnect());
  const events = new Recorder(`events of ${channelName}`);
  const channel = client.subscribe(channelName);
  channel.bind_global((event, data) => events.fn({ event, data }));
  return { client, channel, events };
}

describe("cache channels", () => {
  let server;
  before(async () => {
    server = await start();
  });

  test("a late pusher-js subscriber gets the last event right after pusher:subscription_succeeded", async () => {
    await trigger(server, ["cache-prices"], "price", { v: 1 });
    await trigger(server, ["cache-prices"], "price", { v: 2 });
    const { events } = await pusherClient(server, "cache-prices");
    assert.equal((await events.next()).event, "pusher:subscription_succeeded");
    assert.deepEqual(await events.next(), { event: "price", data: { v: 2 } });
    await trigger(server, ["cache-prices"], "price", { v: 3 });
    assert.deepEqual(await events.next(), { event: "price", data: { v: 3 } }); // v1 was never sent
  });

  test("an empty cache answers pusher:cache_miss (Echo listens to it as .pusher:cache_miss)", async () => {
    const { events } = await pusherClient(server, "cache-nothing-yet");
    assert.equal((await events.next()).event, "pusher:subscription_succeeded");
    assert.equal((await events.next()).event, "pusher:cache_miss");

    const e = await echo(server);
    const miss = once((cb) => e.channel("cache-nothing-either").listen(".pusher:cache_miss", () => cb(true)), {
      what: "cache miss through Echo",
    });
    assert.equal(await miss, true);
  });

  test("Echo.private() on a private cache channel, fed by the native trigger", async () => {
    await publish(server, "cache-user.5", "balance", { eur: 5 });
    const e = await echo(server, 5);
    const got = new Recorder("balance");
    e.private("cache-user.5").listen(".balance", got.fn);
    assert.deepEqual(await got.next(), { eur: 5 });
  });

  test("Echo.encryptedPrivate() on an encrypted cache channel decrypts the cached event", async () => {
    await publish(server, "private-encrypted-cache-user.6", "statement", { balance: 66 });
    const e = await echo(server, 6);
    const got = new Recorder("statement");
    e.encryptedPrivate("cache-user.6").listen(".statement", got.fn);
    assert.deepEqual(await got.next(), { balance: 66 });
  });

  test("client events are not cached", async () => {
    const a = await pusherClient(server, "private-cache-user.8", { userId: 8 });
    assert.equal((await a.events.next()).event, "pusher:subscription_succeeded");
    assert.equal((await a.events.next()).event, "pusher:cache_miss");
    const b = await pusherClient(server, "private-cache-user.8", { userId: 8 });
    await b.events.until(({ event }) => event === "pusher:cache_miss");
    a.channel.trigger("client-typing", { x: 1 });
    assert.deepEqual(await b.events.next(), { event: "client-typing", data: { x: 1 } });
    const late = await pusherClient(server, "private-cache-user.8", { userId: 8 });
    assert.equal((await late.events.next()).event, "pusher:subscription_succeeded");
    assert.equal((await late.events.next()).event, "pusher:cache_miss");
  });
});

function redisAnswers(url) {
  const { hostname, port } = new URL(url);
  return new Promise((done) => {
    const socket = net.connect({ host: hostname, port: Number(port || 6379) });
    socket.setTimeout(500);
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

describe("cache channels over Redis", () => {
  const prefix = `test-js-${randomUUID().slice(0, 12)}:`;
  let available = false;

  before(async () => {
    available = await redisAnswers(REDIS_URL);
    if (!available && process.env.CI === "true") throw new Error(`Redis at ${REDIS_URL} is required under CI`);
  });

  after(async () => {
    if (!available) return;
    // Stop this block's servers first: a running node keeps writing its stats under the prefix.
    for (const s of servers.splice(0)) await s.close();
    const code = [
      "import redis, sys",
      "client = redis.Redis.from_url(sys.argv[1])",
      "keys = list(client.scan_iter(match=sys.argv[2] + '*', count=1000))",
      "client.delete(*keys) if keys else None",
    ].join("\n");
    await run(PYTHON, ["-c", code, REDIS_URL, prefix], { cwd: REPO_ROOT, env: serverEnv() });
  });

  test("two servers share the cache: published through one, a late subscriber of the other gets it", async (t) => {
    if (!available) return t.skip(`no Redis at ${REDIS_URL}`);
    const env = { BROADCAST_DRIVER: "redis", BROADCAST_REDIS_URL: REDIS_URL, BROADCAST_CHANNELS_PREFIX: prefix };
    const [a, b] = await Promise.all([start(env), start(env)]);
    await trigger(a, ["cache-score"], "goal", { home: 1 }); // nobody is subscribed anywhere
    const onB = await pusherClient(b, "cache-score");
    assert.equal((await onB.events.next()).event, "pusher:subscription_succeeded");
    assert.deepEqual(await onB.events.next(), { event: "goal", data: { home: 1 } });
    const e = await echo(a);
    const got = new Recorder("goal on a");
    e.channel("cache-score").listen(".goal", got.fn);
    assert.deepEqual(await got.next(), { home: 1 });
  });
});
