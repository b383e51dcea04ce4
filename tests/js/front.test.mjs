/**
 * The real npm laravel-echo + pusher-js through uvicorn on this project's WebSocket protocol
 * (`--ws django_broadcasting.server.front.uvicorn:WebSocketProtocol`): connect, public, private and
 * presence channels, a whisper, and a native /ws client on the same broadcast. The full Echo suite
 * (echo.test.mjs) runs on daphne; this is the same client through the other front.
 */

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { Recorder, connectClient, makeToken, once, publish } from "./helpers.mjs";
import { echoConnected, makeEcho, startPusherServer, trigger } from "./pusher_helpers.mjs";

let server;
const echos = [];

async function echo(options = {}) {
  const e = makeEcho(server, options);
  echos.push(e);
  await echoConnected(e);
  return e;
}

function subscribed(channel) {
  return once((cb) => channel.subscribed(cb), { what: `subscription of ${channel.name}` });
}

before(async () => {
  server = await startPusherServer({}, { server: "uvicorn-front" });
});

after(async () => {
  for (const e of echos) e.disconnect();
  if (server) await server.close();
});

describe("pusher-js through the uvicorn front", () => {
  test("the server runs the front", () => {
    assert.match(server.logTail(200), /WebSocket protocol: django_broadcasting\.server\.front\.uvicorn/);
  });

  test("public channel: Pusher HTTP API and native trigger reach Echo", async () => {
    const e = await echo();
    assert.match(e.socketId(), /^\d+\.\d+$/);
    const got = new Recorder("news");
    await subscribed(e.channel("general").listen(".news", got.fn));
    await trigger(server, ["general"], "news", { n: 1 });
    assert.deepEqual(await got.next(), { n: 1 });
    await publish(server, "general", "news", { n: 2 });
    assert.deepEqual(await got.next(), { n: 2 });
  });

  test("private channel through /broadcasting/auth", async () => {
    const e = await echo({ userId: 5 });
    const got = new Recorder("secret");
    await subscribed(e.private("user.5").listen(".secret", got.fn));
    await publish(server, "user.5", "secret", { for: 5 });
    assert.deepEqual(await got.next(), { for: 5 });
  });

  test("presence: here, joining, and a whisper to the other member", async () => {
    const alice = await echo({ userId: 1, name: "Alice" });
    const bob = await echo({ userId: 2, name: "Bob" });
    const hereA = new Recorder("here A");
    const joining = new Recorder("joining");
    const whisper = new Recorder("whisper");
    alice.join("chat.1").here(hereA.fn).joining(joining.fn).listenForWhisper("typing", whisper.fn);
    assert.deepEqual(await hereA.next(), [{ id: "1", name: "Alice" }]);
    const hereB = new Recorder("here B");
    const room = bob.join("chat.1").here(hereB.fn);
    assert.deepEqual((await hereB.next()).map((m) => m.name).sort(), ["Alice", "Bob"]);
    assert.deepEqual(await joining.next(), { id: "2", name: "Bob" });
    room.whisper("typing", { name: "Bob" });
    assert.deepEqual(await whisper.next(), { name: "Bob" });
  });

  test("a native /ws client and an Echo client receive the same broadcast", async () => {
    const e = await echo({ userId: 5 });
    const native = await connectClient(server, { token: makeToken(5) });
    try {
      const gotEcho = new Recorder("echo");
      const gotNative = new Recorder("native");
      await subscribed(e.private("user.5").listen(".invoice.paid", gotEcho.fn));
      await once((cb) => native.private("user.5").listen("invoice.paid", gotNative.fn).subscribed(cb));
      await trigger(server, ["private-user.5"], "invoice.paid", { total: 12 });
      assert.deepEqual(await gotEcho.next(), { total: 12 });
      assert.deepEqual(await gotNative.next(), { total: 12 });
    } finally {
      native.disconnect();
    }
  });
});
