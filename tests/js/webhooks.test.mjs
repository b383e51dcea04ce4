/**
 * Webhooks driven by the real npm laravel-echo + pusher-js: a presence channel joined, whispered
 * on and left by unmodified Echo clients; a node:http receiver checks X-Pusher-Key and
 * X-Pusher-Signature (HMAC-SHA256 of the raw body, computed here with node:crypto).
 */

import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { createServer } from "node:http";
import { after, before, test } from "node:test";

import { Recorder, waitUntil } from "./helpers.mjs";
import { APP_KEY, APP_SECRET, echoConnected, makeEcho, startPusherServer } from "./pusher_helpers.mjs";

let server;
let receiver;
const requests = [];
const echos = [];

before(async () => {
  receiver = createServer((req, res) => {
    const chunks = [];
    req.on("data", (chunk) => chunks.push(chunk));
    req.on("end", () => {
      requests.push({ headers: req.headers, body: Buffer.concat(chunks).toString("utf8") });
      res.writeHead(200).end("{}");
    });
  });
  await new Promise((done) => receiver.listen(0, "127.0.0.1", done));
  const url = `http://127.0.0.1:${receiver.address().port}/pusher/webhooks`;
  server = await startPusherServer({ PUSHER_WEBHOOK_URL: url, BROADCAST_WEBHOOK_BATCH_DELAY: "0.05" });
});

after(async () => {
  for (const e of echos) e.disconnect();
  if (server) await server.close();
  if (receiver) await new Promise((done) => receiver.close(done));
});

async function echo(options) {
  const e = makeEcho(server, options);
  echos.push(e);
  await echoConnected(e);
  return e;
}

function events() {
  return requests.flatMap((r) => JSON.parse(r.body).events);
}

function named(name) {
  return events().filter((e) => e.name === name);
}

test("Echo clients on a presence channel produce Pusher's webhooks, signed", async () => {
  const alice = await echo({ userId: 11, name: "Alice" });
  const bob = await echo({ userId: 12, name: "Bob" });
  const hereA = new Recorder("here A");
  const whispers = new Recorder("whisper");
  alice.join("chat.9").here(hereA.fn).listenForWhisper("typing", whispers.fn);
  await hereA.next();
  await waitUntil(() => named("channel_occupied").length === 1 && named("member_added").length === 1, {
    timeout: 5000,
    what: "channel_occupied and member_added",
  });
  assert.deepEqual(named("channel_occupied"), [{ name: "channel_occupied", channel: "presence-chat.9" }]);
  assert.deepEqual(named("member_added"), [{ name: "member_added", channel: "presence-chat.9", user_id: "11" }]);

  const hereB = new Recorder("here B");
  const room = bob.join("chat.9").here(hereB.fn);
  await hereB.next();
  room.whisper("typing", { name: "Bob" });
  assert.deepEqual(await whispers.next(), { name: "Bob" });
  await waitUntil(() => named("client_event").length === 1, { timeout: 5000, what: "client_event" });
  assert.deepEqual(named("client_event"), [
    {
      name: "client_event",
      channel: "presence-chat.9",
      event: "client-typing",
      data: JSON.stringify({ name: "Bob" }),
      socket_id: bob.socketId(),
      user_id: "12",
    },
  ]);

  bob.leave("chat.9");
  alice.leave("chat.9");
  await waitUntil(() => named("channel_vacated").length === 1 && named("member_removed").length === 2, {
    timeout: 10000,
    what: "channel_vacated and both member_removed",
  });
  assert.equal(named("channel_occupied").length, 1);
  assert.deepEqual(named("member_removed").map((e) => e.user_id).sort(), ["11", "12"]);

  for (const { headers, body } of requests) {
    assert.equal(headers["x-pusher-key"], APP_KEY);
    const expected = createHmac("sha256", APP_SECRET).update(body).digest("hex");
    assert.equal(headers["x-pusher-signature"], expected);
    const { time_ms: timeMs } = JSON.parse(body);
    assert.ok(Math.abs(Date.now() - timeMs) < 60000);
  }
});
