/**
 * Token expiry against a real daphne process: the server closes with 4011, the client asks
 * `refreshToken` for a new one, reconnects and resubscribes; without the callback it stops.
 */

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { Recorder, connectClient, connected, makeToken, publish, startServer } from "./helpers.mjs";

let server;
const clients = [];

before(async () => {
  // A short activity timeout makes the server check token expiry every quarter second.
  server = await startServer({ BROADCAST_ACTIVITY_TIMEOUT: 2 });
});

after(async () => {
  for (const c of clients) c.disconnect();
  if (server) await server.close();
});

async function client(options) {
  const c = await connectClient(server, options);
  clients.push(c);
  return c;
}

test("an expired token is refreshed through the callback, then the client reconnects", async () => {
  const refreshes = new Recorder("refreshToken");
  const c = await client({
    token: makeToken(21, { ttl: 2 }),
    refreshToken: async () => {
      refreshes.fn();
      return makeToken(21, { ttl: 300 });
    },
  });
  const errors = new Recorder("error");
  const disconnects = new Recorder("disconnected");
  const subscribed = new Recorder("subscribed");
  const notes = new Recorder("notification");
  c.on("error", errors.fn);
  c.on("disconnected", disconnects.fn);
  c.private("user.21").notification(notes.fn).subscribed(subscribed.fn);
  await subscribed.next();
  const oldToken = c.token;

  assert.equal((await errors.next({ timeout: 15000 })).code, 4011);
  const drop = await disconnects.next();
  assert.equal(drop.code, 4011);
  assert.equal(drop.reconnecting, true);
  await refreshes.next();
  await subscribed.next({ timeout: 15000 });
  assert.notEqual(c.token, oldToken);
  assert.equal(c.state, "connected");
  assert.equal(c.userId, "21");
  await publish(server, "user.21", "notification", { title: "fresh" });
  assert.deepEqual(await notes.next(), { title: "fresh" });
  assert.equal(refreshes.count, 1);
});

test("without refreshToken an expired token ends the connection for good", async () => {
  const c = await client({ token: makeToken(22, { ttl: 2 }) });
  const disconnects = new Recorder("disconnected");
  const errors = new Recorder("error");
  c.on("disconnected", disconnects.fn);
  c.on("error", errors.fn);
  const drop = await disconnects.next({ timeout: 15000 });
  assert.equal(drop.code, 4011);
  assert.equal(drop.reconnecting, false);
  assert.equal(c.state, "disconnected");
  assert.equal(c._timers.reconnect, null);
  assert.ok(errors.calls.some(([e]) => e.code === 4011));
});

test("a token that expired before connecting is refreshed first (no refused handshake)", async () => {
  const refreshes = new Recorder("refreshToken");
  const states = new Recorder("state");
  const c = await connectClient(server, {
    autoConnect: false,
    token: makeToken(23, { ttl: -10 }),
    refreshToken: () => {
      refreshes.fn();
      return makeToken(23);
    },
  });
  clients.push(c);
  c.onStateChange(states.fn);
  c.connect();
  await connected(c);
  assert.equal(refreshes.count, 1);
  assert.equal(c.userId, "23");
  assert.deepEqual(states.calls.map(([s]) => s), ["connecting", "connected"]);
});

test("a refreshToken that fails leaves the client disconnected with an error", async () => {
  const c = await connectClient(server, {
    autoConnect: false,
    token: makeToken(24, { ttl: -10 }),
    refreshToken: async () => {
      throw new Error("session over");
    },
  });
  clients.push(c);
  const errors = new Recorder("error");
  const disconnects = new Recorder("disconnected");
  c.on("error", errors.fn);
  c.on("disconnected", disconnects.fn);
  c.connect();
  const err = await errors.next();
  assert.equal(err.code, 4011);
  assert.match(err.message, /session over/);
  assert.equal((await disconnects.next()).reconnecting, false);
  assert.equal(c.state, "disconnected");
});
