/**
 * The browser client against a real daphne process: connect, ping, public/private/presence
 * channels, refusals, whispers, stopListening, leave and socketId with to_others.
 */

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { Recorder, connectClient, makeToken, once, publish, startServer } from "./helpers.mjs";

let server;
const clients = [];

async function client(options = {}) {
  const c = await connectClient(server, options);
  clients.push(c);
  return c;
}

/** Resolves when `channel` is subscribed (the server's `subscribed` frame arrived). */
function subscribed(channel) {
  return once((cb) => channel.subscribed(cb), { what: `subscribed on ${channel.name}` });
}

before(async () => {
  server = await startServer();
});

after(async () => {
  for (const c of clients) c.disconnect();
  if (server) await server.close();
});

describe("connection", () => {
  test("connects, gets a socket id, and a ping is answered with a pong", async () => {
    const states = new Recorder("state");
    const c = await client({ autoConnect: false });
    c.onStateChange(states.fn);
    c.connect();
    assert.equal(await states.next(), "connecting");
    assert.equal(await states.next(), "connected");
    assert.match(c.socketId(), /\S+/);
    assert.deepEqual(c.socketHeaders(), { "X-Socket-ID": c.socketId() });
    assert.equal(c.activityTimeout, 120);
    const pong = once((cb) => c.on("message", (frame) => frame.event === "pong" && cb(frame)), { what: "pong" });
    c._ping();
    const frame = await pong;
    assert.equal(frame.channel, null);
    c.disconnect();
    assert.equal(c.state, "disconnected");
    assert.equal(c.socketId(), null);
  });

  test("pings on its own below the server's activity timeout", async () => {
    const c = await client({ pingInterval: 50 });
    const pongs = new Recorder("pong");
    c.on("message", (frame) => frame.event === "pong" && pongs.fn(frame));
    await pongs.next();
    await pongs.next();
    assert.equal(c.state, "connected");
  });

  test("constructor needs a url and a WebSocket implementation", () => {
    assert.throws(() => new (clients[0].constructor)({}), TypeError);
  });
});

describe("public channels", () => {
  test("listen receives a broadcast with its data", async () => {
    const c = await client();
    const announcements = new Recorder("announcement");
    const channel = c.channel("general").listen("announcement", announcements.fn);
    await subscribed(channel);
    assert.equal(channel.type, "public");
    await publish(server, "general", "announcement", { message: "hello", n: 1 });
    const [data, frame] = await announcements.next({ all: true });
    assert.deepEqual(data, { message: "hello", n: 1 });
    assert.equal(frame.channel, "general");
    assert.equal(frame.event, "announcement");
    assert.match(frame.timestamp, /Z$/);
  });

  test("a leading dot in the event name (Laravel Echo style) is ignored", async () => {
    const c = await client();
    const got = new Recorder("dotted");
    const channel = c.channel("public").listen(".OrderShipped", got.fn);
    await subscribed(channel);
    await publish(server, "public", "OrderShipped", { id: 7 });
    assert.deepEqual(await got.next(), { id: 7 });
  });

  test("listenToAll sees every event; stopListening stops one", async () => {
    const c = await client();
    const all = new Recorder("all");
    const first = new Recorder("first");
    const channel = c.channel("announcements").listenToAll(all.fn).listen("first", first.fn);
    await subscribed(channel);
    await publish(server, "announcements", "first", { n: 1 });
    assert.deepEqual(await first.next(), { n: 1 });
    assert.deepEqual(await all.next({ all: true }).then((a) => a.slice(0, 2)), ["first", { n: 1 }]);
    channel.stopListening("first");
    await publish(server, "announcements", "first", { n: 2 });
    await publish(server, "announcements", "second", { n: 3 });
    // Frames arrive in order: once listenToAll saw "second", the stopped listener had its chance.
    assert.equal(await all.until((event) => event === "second"), "second");
    assert.equal(first.count, 1);
  });

  test("leave unsubscribes: later broadcasts are not delivered", async () => {
    const c = await client();
    const news = new Recorder("news");
    const channel = c.channel("general").listen("news", news.fn);
    await subscribed(channel);
    const unsubscribed = once((cb) => c.on("message", (f) => f.event === "unsubscribed" && cb(f)), {
      what: "unsubscribed",
    });
    c.leave("general");
    assert.equal((await unsubscribed).channel, "general");
    assert.equal(c.channels.has("general"), false);
    assert.equal(channel.isSubscribed, false);
    // A second channel on the same socket proves delivery still works after the leave.
    const probe = new Recorder("probe");
    await subscribed(c.channel("public").listen("news", probe.fn));
    await publish(server, "general", "news", { n: 1 });
    await publish(server, "public", "news", { n: 2 });
    assert.deepEqual(await probe.next(), { n: 2 });
    assert.equal(news.count, 0);
  });

  test("socketId() sent with a broadcast leaves this connection out (to_others)", async () => {
    const a = await client();
    const b = await client();
    const gotA = new Recorder("a");
    const gotB = new Recorder("b");
    await subscribed(a.channel("general").listen("edited", gotA.fn));
    await subscribed(b.channel("general").listen("edited", gotB.fn).listen("done", gotB.fn));
    a.channel("general").listen("done", gotA.fn);
    await publish(server, "general", "edited", { x: 1 }, { socketId: a.socketId() });
    await publish(server, "general", "done", { x: 2 });
    assert.deepEqual(await gotB.next(), { x: 1 });
    assert.deepEqual(await gotA.next(), { x: 2 }); // the first thing a saw is "done", not "edited"
  });
});

describe("private channels", () => {
  test("a token opens the user's own channel, with or without the private- prefix", async () => {
    const c = await client({ token: makeToken(5) });
    assert.equal(c.userId, "5");
    const notes = new Recorder("notification");
    const channel = c.private("private-user.5").notification(notes.fn);
    assert.equal(channel.name, "user.5");
    assert.equal(c.private("user.5"), channel);
    await subscribed(channel);
    assert.equal(channel.type, "private");
    await publish(server, "user.5", "notification", { title: "Hi" });
    assert.deepEqual(await notes.next(), { title: "Hi" });
  });

  test("a refused channel with no .error() callback is reported on the console", async () => {
    const c = await client({ token: makeToken(5) });
    const warnings = new Recorder("console.warn");
    const original = console.warn;
    console.warn = (...args) => warnings.fn(args.join(" "));
    try {
      c.private("user.6");
      const line = await warnings.next();
      assert.match(line, /\[broadcasting\] channel "user\.6": .+ \(4030\)/);
    } finally {
      console.warn = original;
    }
  });

  test("a refused channel calls .error and leaves the other channels working", async () => {
    const c = await client({ token: makeToken(5) });
    const errors = new Recorder("error");
    const refused = c.private("user.6").error(errors.fn);
    const err = await errors.next();
    assert.equal(err.code, 4030);
    assert.ok(err.message);
    assert.equal(refused.isSubscribed, false);
    const global = new Recorder("global error");
    c.on("error", global.fn);
    const anonymous = await client();
    const adminErrors = new Recorder("admin error");
    anonymous.private("admin").error(adminErrors.fn);
    assert.equal((await adminErrors.next()).code, 4030);
    const ok = new Recorder("ok");
    await subscribed(c.private("user.5").listen("ping-me", ok.fn));
    await publish(server, "user.5", "ping-me", {});
    await ok.next();
    assert.equal(c.state, "connected");
    assert.equal(global.count, 0);
  });
});

describe("presence channels", () => {
  test("here, joining and leaving with two users", async () => {
    const alice = await client({ token: makeToken(101, { name: "Alice" }) });
    const here = new Recorder("here");
    const joining = new Recorder("joining");
    const leaving = new Recorder("leaving");
    const room = alice.join("chat.42").here(here.fn).joining(joining.fn).leaving(leaving.fn);
    assert.equal(room.name, "presence.chat.42");
    assert.deepEqual((await here.next()).map((m) => m.id), ["101"]);
    assert.equal(room.me.id, "101");

    const bob = await client({ token: makeToken(102, { name: "Bob" }) });
    const bobHere = new Recorder("bob here");
    const bobRoom = bob.join("presence.chat.42").here(bobHere.fn);
    assert.equal(bobRoom.name, "presence.chat.42");
    assert.deepEqual((await bobHere.next()).map((m) => m.id).sort(), ["101", "102"]);
    const joined = await joining.next();
    assert.equal(joined.id, "102");
    assert.equal(joined.info.name, "Bob");
    assert.deepEqual(room.members.map((m) => m.id).sort(), ["101", "102"]);

    bob.leave("chat.42");
    const left = await leaving.next();
    assert.equal(left.id, "102");
    assert.equal(left.info.name, "Bob", "leaving() gets the info the member joined with");
    assert.deepEqual(room.members.map((m) => m.id), ["101"]);
  });

  test("a closed connection leaves the room too", async () => {
    const alice = await client({ token: makeToken(201) });
    const leaving = new Recorder("leaving");
    const joining = new Recorder("joining");
    await subscribed(alice.join("chat.43").joining(joining.fn).leaving(leaving.fn));
    const bob = await client({ token: makeToken(202) });
    await subscribed(bob.join("chat.43"));
    assert.equal((await joining.next()).id, "202");
    bob.disconnect();
    assert.equal((await leaving.next()).id, "202");
  });

  test("presence needs a token: anonymous joins get .error", async () => {
    const c = await client();
    const errors = new Recorder("error");
    c.join("chat.44").error(errors.fn);
    assert.equal((await errors.next()).code, 4030);
  });

  test("whisper reaches the other members with the sender's user id, not the sender", async () => {
    const alice = await client({ token: makeToken(301) });
    const bob = await client({ token: makeToken(302) });
    const aliceGot = new Recorder("alice typing");
    const bobGot = new Recorder("bob typing");
    const aliceRoom = alice.join("chat.45").listenForWhisper("typing", aliceGot.fn);
    const bobRoom = bob.join("chat.45").listenForWhisper("typing", bobGot.fn);
    await Promise.all([subscribed(aliceRoom), subscribed(bobRoom)]);
    aliceRoom.whisper("typing", { on: true });
    const [data, frame] = await bobGot.next({ all: true });
    assert.deepEqual(data, { on: true });
    assert.equal(frame.event, "client-typing");
    assert.equal(frame.user_id, "301");
    // Bob answers; Alice's first whisper is Bob's, so her own never came back to her.
    bobRoom.whisper("client-typing", { on: false });
    const [back, backFrame] = await aliceGot.next({ all: true });
    assert.deepEqual(back, { on: false });
    assert.equal(backFrame.user_id, "302");
    bobRoom.stopListeningForWhisper("typing");
    aliceRoom.whisper("typing", { on: "again" });
    bobRoom.listenToAll((event, d) => event === "probe" && bobGot.fn(d));
    await publish(server, "presence.chat.45", "probe", { p: 1 });
    assert.deepEqual(await bobGot.next(), { p: 1 });
  });

  test("whisper on a public channel is refused with an error on the channel", async () => {
    const c = await client();
    const errors = new Recorder("error");
    const channel = c.channel("general").error(errors.fn);
    await subscribed(channel);
    channel.whisper("typing", {});
    assert.equal((await errors.next()).code, 4031);
    assert.equal(channel.isSubscribed, true);
  });
});

describe("pacing", () => {
  test("many subscriptions and a burst of whispers stay under the server's rate limit", async () => {
    const a = await client({ token: makeToken(401) });
    const b = await client({ token: makeToken(402) });
    const errors = new Recorder("errors");
    a.on("error", errors.fn);
    const channels = Array.from({ length: 70 }, (_, i) => a.channel(`room.${i}`));
    const room = a.join("chat.46");
    await Promise.all([...channels, room].map(subscribed));
    const whispers = new Recorder("whispers");
    await subscribed(b.join("chat.46").listenForWhisper("typing", whispers.fn));
    for (let i = 0; i < 90; i++) room.whisper("typing", { i });
    for (let i = 0; i < 90; i++) assert.deepEqual(await whispers.next(), { i });
    assert.equal(errors.count, 0);
    assert.equal(a.state, "connected");
  });

  test("without pacing the same burst is rate limited (the test can fail)", async () => {
    const a = await client({ token: makeToken(403), maxFramesPerSecond: 10000 });
    const errors = new Recorder("errors");
    a.on("error", errors.fn);
    const room = a.join("chat.47");
    await subscribed(room);
    for (let i = 0; i < 90; i++) room.whisper("typing", { i });
    assert.equal((await errors.next()).code, 4080);
  });
});
