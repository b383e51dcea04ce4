/**
 * The real npm laravel-echo + pusher-js, unmodified, against a real daphne process speaking the
 * Pusher protocol on /app/{key}: public, private (through /broadcasting/auth) and presence
 * channels, whispers, toOthers, .error() callbacks, user sign-in, and one broadcast reaching a
 * native /ws client and an Echo client alike.
 */

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { Recorder, connectClient, makeToken, once, publish } from "./helpers.mjs";
import { echoConnected, makeEcho, pusherApi, APP_ID, startPusherServer, trigger } from "./pusher_helpers.mjs";

let server;
const echos = [];
const natives = [];

async function echo(options = {}) {
  const e = makeEcho(server, options);
  echos.push(e);
  await echoConnected(e);
  return e;
}

/** Resolves when an Echo channel's subscription succeeded. */
function subscribed(channel) {
  return once((cb) => channel.subscribed(cb), { what: `subscription of ${channel.name}` });
}

before(async () => {
  server = await startPusherServer();
});

after(async () => {
  for (const e of echos) e.disconnect();
  for (const n of natives) n.disconnect();
  if (server) await server.close();
});

describe("public channels", () => {
  test("Echo.channel().listen() receives events from the Pusher HTTP API and the native trigger", async () => {
    const e = await echo();
    assert.match(e.socketId(), /^\d+\.\d+$/);
    const got = new Recorder("news");
    await subscribed(e.channel("general").listen(".news", got.fn));
    await trigger(server, ["general"], "news", { n: 1 });
    assert.deepEqual(await got.next(), { n: 1 });
    await publish(server, "general", "news", { n: 2 });
    assert.deepEqual(await got.next(), { n: 2 });
  });

  test("Echo's reverb broadcaster connects the same way", async () => {
    const e = await echo({ broadcaster: "reverb" });
    const got = new Recorder("reverb");
    await subscribed(e.channel("general").listen(".hello", got.fn));
    await trigger(server, ["general"], "hello", { via: "reverb" });
    assert.deepEqual(await got.next(), { via: "reverb" });
  });

  test("Echo's App.Events namespace works with namespaced event names", async () => {
    const e = await echo();
    const got = new Recorder("OrderShipped");
    await subscribed(e.channel("public").listen("OrderShipped", got.fn));
    await trigger(server, ["public"], "App\\Events\\OrderShipped", { id: 7 });
    assert.deepEqual(await got.next(), { id: 7 });
  });

  test("toOthers: an event sent with the sender's socket id (X-Socket-ID) skips that socket", async () => {
    const sender = await echo();
    const other = await echo();
    const gotSender = new Recorder("sender");
    const gotOther = new Recorder("other");
    await subscribed(sender.channel("announcements").listen(".saved", gotSender.fn));
    await subscribed(other.channel("announcements").listen(".saved", gotOther.fn));
    await trigger(server, ["announcements"], "saved", { n: 1 }, { socketId: sender.socketId() });
    await trigger(server, ["announcements"], "saved", { n: 2 });
    assert.deepEqual(await gotOther.next(), { n: 1 });
    assert.deepEqual(await gotOther.next(), { n: 2 });
    // Events arrive in order: the sender's first one is the second broadcast.
    assert.deepEqual(await gotSender.next(), { n: 2 });
    assert.equal(gotSender.count, 1);
  });
});

describe("private channels", () => {
  test("Echo.private() subscribes through /broadcasting/auth and receives broadcasts", async () => {
    const e = await echo({ userId: 5 });
    const got = new Recorder("secret");
    await subscribed(e.private("user.5").listen(".secret", got.fn));
    await publish(server, "user.5", "secret", { for: 5 });
    assert.deepEqual(await got.next(), { for: 5 });
  });

  test(".error() fires when /broadcasting/auth refuses (403)", async () => {
    const e = await echo({ userId: 5 });
    const error = await once((cb) => e.private("user.6").error(cb), { what: "error callback" });
    assert.equal(error.status, 403);
  });

  test(".error() fires when the server refuses a subscription (pusher:subscription_error)", async () => {
    const e = await echo({ userId: 5 });
    // "user.5" is private by its rule: subscribing to it as a public name is refused by the server.
    const error = await once((cb) => e.channel("user.5").error(cb), { what: "error callback" });
    assert.equal(error.type, "AuthError");
    assert.equal(error.status, 403);
    assert.match(error.error, /private-user\.5/);
  });

  test("whisper() and listenForWhisper(): delivered to others, never echoed", async () => {
    const a = await echo({ userId: 5 });
    const b = await echo({ userId: 5 });
    const gotA = new Recorder("a");
    const gotB = new Recorder("b");
    const channelA = a.private("user.5").listenForWhisper("typing", gotA.fn);
    const channelB = b.private("user.5").listenForWhisper("typing", gotB.fn);
    await Promise.all([subscribed(channelA), subscribed(channelB)]);
    channelB.whisper("typing", { from: "b" });
    assert.deepEqual(await gotA.next(), { from: "b" });
    channelA.whisper("typing", { from: "a" });
    assert.deepEqual(await gotB.next(), { from: "a" }); // b's first whisper received is a's
    assert.equal(gotA.count, 1);
  });
});

describe("presence channels", () => {
  test("join().here().joining().leaving() with two clients", async () => {
    const alice = await echo({ userId: 1, name: "Alice" });
    const bob = await echo({ userId: 2, name: "Bob" });
    const hereA = new Recorder("here A");
    const joining = new Recorder("joining");
    const leaving = new Recorder("leaving");
    alice.join("chat.1").here(hereA.fn).joining(joining.fn).leaving(leaving.fn);
    assert.deepEqual(await hereA.next(), [{ id: "1", name: "Alice" }]);

    const hereB = new Recorder("here B");
    bob.join("chat.1").here(hereB.fn);
    const members = await hereB.next();
    assert.deepEqual(members.map((m) => m.name).sort(), ["Alice", "Bob"]);
    assert.deepEqual(await joining.next(), { id: "2", name: "Bob" });

    bob.leave("chat.1");
    assert.deepEqual(await leaving.next(), { id: "2", name: "Bob" });
  });

  test("whispers on presence channels reach the other members", async () => {
    const alice = await echo({ userId: 3, name: "Ann" });
    const bob = await echo({ userId: 4, name: "Ben" });
    const got = new Recorder("whisper");
    const hereA = new Recorder("here");
    const hereB = new Recorder("here");
    alice.join("chat.2").here(hereA.fn).listenForWhisper("typing", got.fn);
    const room = bob.join("chat.2").here(hereB.fn);
    await Promise.all([hereA.next(), hereB.next()]);
    room.whisper("typing", { name: "Ben" });
    assert.deepEqual(await got.next(), { name: "Ben" });
  });
});

describe("one hub for both protocols", () => {
  test("a native /ws client and an Echo client receive the same broadcast", async () => {
    const e = await echo({ userId: 5 });
    const native = await connectClient(server, { token: makeToken(5) });
    natives.push(native);
    const gotEcho = new Recorder("echo");
    const gotNative = new Recorder("native");
    await subscribed(e.private("user.5").listen(".invoice.paid", gotEcho.fn));
    await once((cb) => native.private("user.5").listen("invoice.paid", gotNative.fn).subscribed(cb));
    await trigger(server, ["private-user.5"], "invoice.paid", { total: 12 });
    assert.deepEqual(await gotEcho.next(), { total: 12 });
    assert.deepEqual(await gotNative.next(), { total: 12 });
    await publish(server, "user.5", "invoice.paid", { total: 13 });
    assert.deepEqual(await gotEcho.next(), { total: 13 });
    assert.deepEqual(await gotNative.next(), { total: 13 });
  });

  test("the HTTP API reports Echo's presence members", async () => {
    const e = await echo({ userId: 8, name: "Eve" });
    const here = new Recorder("here");
    e.join("chat.8").here(here.fn);
    await here.next();
    const response = await pusherApi(server, "GET", `/apps/${APP_ID}/channels/presence-chat.8/users`);
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { users: [{ id: "8" }] });
  });
});

describe("user authentication", () => {
  test("signin() through /broadcasting/user-auth, then events sent to the user", async () => {
    const e = await echo({ userId: 9, name: "Ida" });
    const pusher = e.connector.pusher;
    const got = new Recorder("user event");
    pusher.user.bind("hello", got.fn);
    e.connector.signin();
    await pusher.user.signinDonePromise;
    assert.equal(pusher.user.user_data.id, "9");
    await trigger(server, ["#server-to-user-9"], "hello", { only: "Ida" });
    assert.deepEqual(await got.next(), { only: "Ida" });
  });
});

describe("liveness", () => {
  test("pusher-js answers the server's pings and stays connected past the activity timeout", async () => {
    const quick = await startPusherServer({ BROADCAST_ACTIVITY_TIMEOUT: "2" });
    const e = makeEcho(quick);
    try {
      await echoConnected(e);
      const connection = e.connector.pusher.connection;
      const socketId = e.socketId();
      const pings = new Recorder("pusher:ping");
      connection.bind("message", (event) => event.event === "pusher:ping" && pings.fn(event));
      for (let i = 0; i < 3; i++) await pings.next({ timeout: 5000 }); // 3 pings: > 2 activity timeouts
      assert.equal(connection.state, "connected");
      assert.equal(e.socketId(), socketId); // the same connection, not a reconnect
    } finally {
      e.disconnect();
      await quick.close();
    }
  });
});
