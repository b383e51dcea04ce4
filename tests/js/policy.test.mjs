/**
 * The client's decisions, driven by a scripted in-memory WebSocket: which close codes it comes
 * back from, the backoff, `last_id` on resubscribe, recovery failures, dead-link detection and
 * channel-name handling. (The behaviour against a real server is in the other test files.)
 */

import assert from "node:assert/strict";
import { afterEach, describe, test } from "node:test";

import {
  Broadcasting,
  canonicalName,
  presenceName,
  tokenExpiry,
} from "../../django_broadcasting/static/django_broadcasting/broadcasting.js";
import { Recorder, makeToken, waitUntil } from "./helpers.mjs";

/** A WebSocket whose server side the test plays. */
class FakeSocket {
  static instances = [];

  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    this.onmessage = this.onclose = this.onerror = null;
    FakeSocket.instances.push(this);
  }

  static last() {
    return FakeSocket.instances[FakeSocket.instances.length - 1];
  }

  send(text) {
    this.sent.push(JSON.parse(text));
  }

  close() {
    this.readyState = 3;
  }

  // -- the server's side ---------------------------------------------------------------------
  greet(data = {}) {
    this.readyState = 1;
    this.frame({ channel: null, event: "connected", data: { socket_id: "1.1", activity_timeout: 120, ...data } });
  }

  frame(frame) {
    this.onmessage?.({ data: JSON.stringify({ timestamp: "2026-01-01T00:00:00Z", data: {}, ...frame }) });
  }

  drop(code, reason = "") {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
}

const clients = [];

function client(options = {}) {
  const c = new Broadcasting({
    url: "ws://test/ws",
    WebSocket: FakeSocket,
    reconnect: { minDelay: 1, maxDelay: 4 },
    ...options,
  });
  clients.push(c);
  return c;
}

/** The next socket the client opens (after `count` sockets existed). */
async function nextSocket(count) {
  await waitUntil(() => FakeSocket.instances.length > count, { timeout: 3000, what: "a new socket" });
  return FakeSocket.last();
}

afterEach(() => {
  for (const c of clients.splice(0)) c.disconnect();
  FakeSocket.instances.length = 0;
});

describe("close codes", () => {
  for (const code of [1006, 1011, 1012, 1013, 4100, 4200, 4201]) {
    test(`${code} is followed by a reconnect`, async () => {
      const c = client();
      const ws = await nextSocket(0);
      ws.greet();
      const drops = new Recorder("disconnected");
      c.on("disconnected", drops.fn);
      ws.drop(code);
      assert.deepEqual(await drops.next(), { code, reason: "", reconnecting: true });
      assert.equal(c.state, "reconnecting");
      const again = await nextSocket(1);
      again.greet();
      assert.equal(c.state, "connected");
    });
  }

  for (const code of [1008, 4001, 4003, 4008, 4009]) {
    test(`${code} ends the connection for good`, async () => {
      const c = client();
      const ws = await nextSocket(0);
      ws.greet();
      const errors = new Recorder("error");
      c.on("error", errors.fn);
      ws.drop(code, "go away");
      assert.deepEqual(await errors.next(), { code, message: "go away" });
      assert.equal(c.state, "disconnected");
      assert.equal(c._timers.reconnect, null);
      assert.equal(FakeSocket.instances.length, 1);
      // connect() is the "something changed" that allows a new try.
      c.connect();
      (await nextSocket(1)).greet();
      assert.equal(c.state, "connected");
    });
  }

  test("a URL the WebSocket constructor rejects is an error, not a retry loop", async () => {
    class Refusing {
      constructor() {
        throw new SyntaxError("bad url");
      }
    }
    const errors = new Recorder("error");
    const c = client({ WebSocket: Refusing, autoConnect: false });
    c.on("error", errors.fn);
    c.connect();
    assert.match((await errors.next()).message, /bad url/);
    assert.equal(c.state, "disconnected");
    assert.equal(c._timers.reconnect, null);
  });

  test("reconnect: false never comes back", async () => {
    const c = client({ reconnect: false });
    const ws = await nextSocket(0);
    ws.greet();
    ws.drop(1006);
    assert.equal(c.state, "disconnected");
  });

  test("disconnect() closes and stays closed", async () => {
    const c = client();
    const ws = await nextSocket(0);
    ws.greet();
    const drops = new Recorder("disconnected");
    c.on("disconnected", drops.fn);
    c.disconnect();
    assert.equal(ws.readyState, 3);
    assert.equal((await drops.next()).reconnecting, false);
    assert.equal(c.state, "disconnected");
    ws.drop(1000); // a late close event from the old socket changes nothing
    assert.equal(FakeSocket.instances.length, 1);
  });
});

describe("backoff", () => {
  test("grows exponentially to maxDelay, with jitter on its upper half", () => {
    const c = client({ autoConnect: false, reconnect: { minDelay: 100, maxDelay: 1000 } });
    const original = Math.random;
    try {
      Math.random = () => 0;
      assert.deepEqual([0, 1, 2, 3, 4, 5].map((n) => c._backoff(1006, n)), [50, 100, 200, 400, 500, 500]);
      Math.random = () => 0.999999;
      assert.deepEqual([0, 1, 2, 3, 4, 5].map((n) => c._backoff(1006, n)), [100, 200, 400, 800, 1000, 1000]);
      // 42xx asks for a prompt first attempt.
      Math.random = () => 0;
      assert.equal(c._backoff(4200, 0), 25);
      assert.equal(c._backoff(4200, 1), 100);
    } finally {
      Math.random = original;
    }
  });

  test("the attempt counter resets once a connection is greeted", async () => {
    const c = client();
    (await nextSocket(0)).drop(1006);
    (await nextSocket(1)).drop(1006);
    assert.equal(c._attempts, 2);
    (await nextSocket(2)).greet();
    assert.equal(c._attempts, 0);
  });
});

describe("resubscribing and recovery", () => {
  test("every channel is resubscribed with the last message id it saw", async () => {
    const c = client();
    c.channel("general");
    c.private("private-orders.1");
    c.join("chat.1");
    const ws = await nextSocket(0);
    ws.greet();
    assert.deepEqual(ws.sent, [
      { action: "subscribe", channel: "general" },
      { action: "subscribe", channel: "orders.1" },
      { action: "subscribe", channel: "presence.chat.1" },
    ]);
    ws.frame({ channel: "general", event: "subscribed", data: { channel: "general", type: "public" } });
    ws.frame({ channel: "general", event: "news", id: "1700-0" });
    ws.frame({ channel: "general", event: "news", id: "1700-1" });
    ws.frame({ channel: "orders.1", event: "shipped", id: 42 });
    ws.drop(1006);
    const again = await nextSocket(1);
    again.greet();
    assert.deepEqual(again.sent, [
      { action: "subscribe", channel: "general", last_id: "1700-1" },
      { action: "subscribe", channel: "orders.1", last_id: 42 },
      { action: "subscribe", channel: "presence.chat.1" },
    ]);
  });

  test("recovery_failed (or error 4290) reaches the channel's .error callbacks and listeners", async () => {
    const c = client();
    const errors = new Recorder("error");
    const events = new Recorder("recovery_failed");
    c.channel("general").error(errors.fn).listen("recovery_failed", events.fn);
    const ws = await nextSocket(0);
    ws.greet();
    ws.frame({ channel: "general", event: "recovery_failed", data: { last_id: "1" } });
    assert.equal((await errors.next()).code, 4290);
    assert.deepEqual(await events.next(), { last_id: "1" });
    ws.frame({ channel: "general", event: "error", data: { code: 4290, message: "gone" } });
    assert.deepEqual(await errors.next(), { code: 4290, message: "gone" });
  });

  test("a channel opened inside a 'connected' callback is subscribed once", async () => {
    const c = client();
    c.channel("general");
    c.on("connected", () => c.channel("public"));
    const ws = await nextSocket(0);
    ws.greet();
    assert.deepEqual(ws.sent.map((f) => f.channel), ["general", "public"]);
  });

  test("presence members follow here/joining/leaving and are refreshed on resubscribe", async () => {
    const c = client();
    const here = new Recorder("here");
    const room = c.join("chat.9").here(here.fn);
    const ws = await nextSocket(0);
    ws.greet();
    const alice = { id: "1", info: { name: "Alice" } };
    const bob = { id: "2", info: { name: "Bob" } };
    ws.frame({ channel: "presence.chat.9", event: "subscribed", data: { type: "presence", members: [alice], me: alice } });
    assert.deepEqual(await here.next(), [alice]);
    ws.frame({ channel: "presence.chat.9", event: "member_added", data: bob });
    ws.frame({ channel: "presence.chat.9", event: "member_added", data: bob }); // idempotent
    assert.deepEqual(room.members, [alice, bob]);
    const leaving = new Recorder("leaving");
    room.leaving(leaving.fn);
    ws.frame({ channel: "presence.chat.9", event: "member_removed", data: { id: "1" } });
    assert.deepEqual(room.members, [bob]);
    assert.deepEqual(await leaving.next(), alice);
    // A here() registered late is told the current members at once.
    const late = new Recorder("late here");
    room.here(late.fn);
    assert.deepEqual(await late.next(), [bob]);
  });
});

describe("keepalive", () => {
  test("no pong within pongTimeout drops the socket and reconnects", async () => {
    const c = client({ pingInterval: 5, pongTimeout: 20 });
    // Listen first: the drop comes 20 ms after the ping, sooner than a loaded machine may see the ping.
    const drops = new Recorder("disconnected");
    c.on("disconnected", drops.fn);
    const ws = await nextSocket(0);
    ws.greet();
    await waitUntil(() => ws.sent.some((f) => f.action === "ping"), { what: "a ping" });
    assert.equal((await drops.next()).code, 1006);
    assert.equal(ws.readyState, 3);
    (await nextSocket(1)).greet();
    assert.equal(c.state, "connected");
  });

  test("the default ping interval is half the server's activity timeout, at most 30 s", async () => {
    const c = client();
    const ws = await nextSocket(0);
    ws.greet({ activity_timeout: 10 });
    assert.equal(c._pingInterval(), 5000);
    c.activityTimeout = 600;
    assert.equal(c._pingInterval(), 30000);
  });
});

describe("names and tokens", () => {
  test("canonical channel names match the server's", () => {
    assert.equal(canonicalName("private-orders.1"), "orders.1");
    assert.equal(canonicalName("presence-chat.1"), "presence.chat.1");
    assert.equal(canonicalName("general"), "general");
    assert.equal(presenceName("chat.1"), "presence.chat.1");
    assert.equal(presenceName("presence.chat.1"), "presence.chat.1");
    assert.equal(presenceName("presence-chat.1"), "presence.chat.1");
    assert.throws(() => canonicalName(""), TypeError);
  });

  test("leave() leaves the channel and its presence twin; leaveChannel() one name", async () => {
    const c = client();
    c.channel("chat.1");
    c.join("chat.1");
    c.channel("other");
    const ws = await nextSocket(0);
    ws.greet();
    c.leave("private-chat.1");
    assert.deepEqual([...c.channels.keys()], ["other"]);
    assert.deepEqual(ws.sent.slice(3), [
      { action: "unsubscribe", channel: "chat.1" },
      { action: "unsubscribe", channel: "presence.chat.1" },
    ]);
  });

  test("whisper sends client-<event>; the same channel opened twice is one object", async () => {
    const c = client();
    const room = c.join("chat.2");
    assert.equal(c.join("presence-chat.2"), room);
    assert.equal(c.channel("presence.chat.2"), room);
    assert.ok(c.channel("presence.chat.3").here, "presence.* is a presence channel whatever opened it");
    const ws = await nextSocket(0);
    ws.greet();
    room.whisper("typing", { on: true });
    room.whisper("client-typing");
    assert.deepEqual(ws.sent.slice(2), [
      { action: "whisper", channel: "presence.chat.2", event: "client-typing", data: { on: true } },
      { action: "whisper", channel: "presence.chat.2", event: "client-typing", data: {} },
    ]);
  });

  test("the token goes in the query string, URL-encoded, after any existing query", async () => {
    client({ url: "ws://test/ws?channel=general", token: "a.b+c" });
    assert.equal((await nextSocket(0)).url, "ws://test/ws?channel=general&auth_token=a.b%2Bc");
  });

  test("tokenExpiry reads exp from a JWT and null from anything else", () => {
    const exp = Math.floor(Date.now() / 1000) + 60;
    assert.ok(Math.abs(tokenExpiry(makeToken(1, { ttl: 60 })) - exp) <= 1);
    assert.equal(tokenExpiry("not-a-jwt"), null);
    assert.equal(tokenExpiry(null), null);
  });

  test("a callback that throws does not stop the others", async () => {
    const c = client();
    const got = new Recorder("second");
    const uncaught = new Recorder("reportError");
    globalThis.reportError = uncaught.fn; // what browsers have; the client reports through it
    try {
      c.channel("general").listen("news", () => {
        throw new Error("boom");
      }).listen("news", got.fn);
      const ws = await nextSocket(0);
      ws.greet();
      ws.frame({ channel: "general", event: "news", data: { n: 1 } });
      assert.deepEqual(await got.next(), { n: 1 });
      assert.equal((await uncaught.next()).message, "boom");
    } finally {
      delete globalThis.reportError;
    }
  });
});
