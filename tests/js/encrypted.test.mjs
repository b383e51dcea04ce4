/**
 * End-to-end encrypted channels with the real npm laravel-echo + pusher-js (which decrypts with
 * tweetnacl), against a real daphne process with PUSHER_ENCRYPTION_MASTER_KEY_BASE64 set:
 * events sealed by the PyPI `pusher` SDK (relayed as ciphertext), by this project's own
 * broadcast_to_channel in another process, and by the server's signed trigger; a native /ws
 * subscriber sees only the ciphertext; client events on an encrypted channel are refused.
 */

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";

import Pusher from "pusher-js";

import { PYTHON, REPO_ROOT, Recorder, connectClient, makeToken, once, publish, serverEnv } from "./helpers.mjs";
import { APP_ID, APP_KEY, APP_SECRET, echoConnected, makeEcho, pusherApi, startPusherServer } from "./pusher_helpers.mjs";

const run = promisify(execFile);
const MASTER_KEY = randomBytes(32).toString("base64");

let server;
const closers = [];

before(async () => {
  server = await startPusherServer({ PUSHER_ENCRYPTION_MASTER_KEY_BASE64: MASTER_KEY });
});

after(async () => {
  for (const close of closers) close();
  if (server) await server.close();
});

async function echo(userId) {
  const e = makeEcho(server, { userId });
  closers.push(() => e.disconnect());
  await echoConnected(e);
  return e;
}

function subscribed(channel) {
  return once((cb) => channel.subscribed(cb), { what: `subscription of ${channel.name}` });
}

/** Run Python in this project's virtualenv, configured to reach `server`. */
async function python(code) {
  const { stdout } = await run(PYTHON, ["-c", code], {
    cwd: REPO_ROOT,
    env: serverEnv({
      BROADCAST_WEBSOCKET_HOST: "127.0.0.1",
      BROADCAST_WEBSOCKET_PORT: new URL(server.url).port,
      PUSHER_APP_ID: APP_ID,
      PUSHER_APP_KEY: APP_KEY,
      PUSHER_APP_SECRET: APP_SECRET,
      PUSHER_ENCRYPTION_MASTER_KEY_BASE64: MASTER_KEY,
    }),
  });
  return stdout;
}

/** Trigger through the PyPI `pusher` SDK, which seals the event itself. */
function sdkTrigger(channel, event, data) {
  const port = new URL(server.url).port;
  return python(
    [
      "import json, pusher",
      `client = pusher.Pusher(app_id=${JSON.stringify(APP_ID)}, key=${JSON.stringify(APP_KEY)}, ` +
        `secret=${JSON.stringify(APP_SECRET)}, host="127.0.0.1", port=${port}, ssl=False, ` +
        `encryption_master_key_base64=${JSON.stringify(MASTER_KEY)})`,
      `client.trigger(${JSON.stringify(channel)}, ${JSON.stringify(event)}, json.loads(${JSON.stringify(JSON.stringify(data))}))`,
    ].join("\n"),
  );
}

describe("encrypted channels", () => {
  test("/broadcasting/auth answers Pusher's shared_secret: base64(SHA-256(channel name + master key))", async () => {
    const response = await fetch(`${server.url}/broadcasting/auth`, {
      method: "POST",
      headers: { Authorization: `Bearer ${makeToken(5)}`, "Content-Type": "application/x-www-form-urlencoded" },
      body: "socket_id=1.2&channel_name=private-encrypted-user.5",
    });
    assert.equal(response.status, 200);
    const body = await response.json();
    const expected = createHash("sha256")
      .update(Buffer.concat([Buffer.from("private-encrypted-user.5"), Buffer.from(MASTER_KEY, "base64")]))
      .digest("base64");
    assert.equal(body.shared_secret, expected);
  });

  test("Echo.encryptedPrivate() decrypts what the PyPI pusher SDK sealed; a native subscriber sees ciphertext only", async () => {
    const e = await echo(5);
    const got = new Recorder("secret");
    await subscribed(e.encryptedPrivate("user.5").listen(".secret", got.fn));

    // A native /ws client of the same user is on the same channel: it receives the relayed payload.
    const native = await connectClient(server, { token: makeToken(5) });
    closers.push(() => native.disconnect());
    const raw = new Recorder("native");
    const channel = native.encryptedPrivate("user.5");
    channel.listen("secret", raw.fn);
    await once((cb) => channel.subscribed(cb), { what: "native subscribed" });

    await sdkTrigger("private-encrypted-user.5", "secret", { card: "4111-1111", n: 1 });
    assert.deepEqual(await got.next(), { card: "4111-1111", n: 1 });
    const relayed = await raw.next();
    assert.deepEqual(Object.keys(relayed).sort(), ["ciphertext", "nonce"]);
    assert.ok(!JSON.stringify(relayed).includes("4111"), "the server relays ciphertext, never plaintext");
  });

  test("broadcast_to_channel() in another process seals for the encrypted channel; Echo decrypts", async () => {
    const e = await echo(7);
    const got = new Recorder("note");
    await subscribed(e.encryptedPrivate("user.7").listen(".note", got.fn));
    const out = await python(
      [
        "import django; django.setup()",
        "from django_broadcasting import broadcast_to_channel",
        "published = broadcast_to_channel('private-encrypted-user.7', 'note', {'text': 'sealed here'})",
        "print(published[0].data_json)",
      ].join("\n"),
    );
    assert.deepEqual(await got.next(), { text: "sealed here" });
    assert.ok(!out.includes("sealed here"), `the publisher sent ciphertext: ${out}`);
  });

  test("the signed trigger seals plain events for encrypted channels; the user's plain channel is another channel", async () => {
    const e = await echo(8);
    const secret = new Recorder("secret");
    const plain = new Recorder("plain");
    await subscribed(e.encryptedPrivate("user.8").listen(".ping", secret.fn));
    await subscribed(e.private("user.8").listen(".ping", plain.fn));
    await publish(server, "private-encrypted-user.8", "ping", { n: 1 });
    await publish(server, "user.8", "ping", { n: 2 });
    assert.deepEqual(await secret.next(), { n: 1 });
    assert.deepEqual(await plain.next(), { n: 2 });
    assert.equal(secret.count, 1);
    assert.equal(plain.count, 1);
  });

  test("the HTTP API refuses plaintext for an encrypted channel (400)", async () => {
    const response = await pusherApi(server, "POST", `/apps/${APP_ID}/events`, {
      name: "leak",
      channels: ["private-encrypted-user.5"],
      data: JSON.stringify({ card: "4111" }),
    });
    assert.equal(response.status, 400);
    assert.match(await response.text(), /must be encrypted/);
  });

  test("a client event on an encrypted channel gets pusher:error and reaches nobody", async () => {
    const a = await echo(9);
    const b = await echo(9);
    const gotB = new Recorder("b");
    await subscribed(a.encryptedPrivate("user.9"));
    await subscribed(b.encryptedPrivate("user.9").listenForWhisper("typing", gotB.fn));
    // pusher-js itself refuses to trigger on an encrypted channel...
    assert.throws(() => a.connector.pusher.channel("private-encrypted-user.9").trigger("client-typing", {}), /not currently supported/);
    // ...and the server refuses the raw frame too.
    const pusher = a.connector.pusher;
    const error = once((cb) => pusher.connection.bind("error", cb), { what: "pusher:error" });
    pusher.send_event("client-typing", { x: 1 }, "private-encrypted-user.9");
    const { type, data } = await error;
    assert.equal(type, "PusherError");
    assert.equal(data.code, null);
    assert.match(data.message, /not supported on encrypted channel/);
    // Proof of absence: a later server event is b's first.
    const events = new Recorder("b events");
    b.encryptedPrivate("user.9").listen(".after", events.fn);
    await publish(server, "private-encrypted-user.9", "after", { n: 1 });
    assert.deepEqual(await events.next(), { n: 1 });
    assert.equal(gotB.count, 0);
  });

  test("pusher-js without Echo: subscribe() with channelAuthorization decrypts", async () => {
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
        headers: { Authorization: `Bearer ${makeToken(11)}` },
      },
    });
    closers.push(() => client.disconnect());
    const channel = client.subscribe("private-encrypted-user.11");
    await once((cb) => channel.bind("pusher:subscription_succeeded", cb), { what: "subscription" });
    const got = new Recorder("raw pusher-js");
    channel.bind("order", got.fn);
    await sdkTrigger("private-encrypted-user.11", "order", { id: 11 });
    assert.deepEqual(await got.next(), { id: 11 });
  });
});
