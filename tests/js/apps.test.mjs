/**
 * Several apps (PUSHER_APPS) with the real npm laravel-echo + pusher-js: each key connects to its
 * own app, private channels are authorized through /broadcasting/auth (which signs with the app of
 * the socket), and an event of one app never reaches the other app's channel of the same name.
 */

import assert from "node:assert/strict";
import { createHash, createHmac } from "node:crypto";
import { after, before, describe, test } from "node:test";

import { Recorder, once } from "./helpers.mjs";
import { echoConnected, makeEcho, startPusherServer } from "./pusher_helpers.mjs";

const SHOP = { id: "2001", key: "shop-js-key", secret: "shop-js-secret-0123456789" };
const CHAT = { id: "2002", key: "chat-js-key", secret: "chat-js-secret-0123456789" };

let server;
const echos = [];

async function echo(app, options = {}) {
  const e = makeEcho(server, { key: app.key, ...options });
  echos.push(e);
  await echoConnected(e);
  return e;
}

function subscribed(channel) {
  return once((cb) => channel.subscribed(cb), { what: `subscription of ${channel.name}` });
}

/** POST /apps/{id}/events signed with the app's own secret (node:crypto, not the server's code). */
async function trigger(app, channels, name, data) {
  const path = `/apps/${app.id}/events`;
  const body = JSON.stringify({ name, channels, data: JSON.stringify(data) });
  const params = {
    auth_key: app.key,
    auth_timestamp: String(Math.floor(Date.now() / 1000)),
    auth_version: "1.0",
    body_md5: createHash("md5").update(body).digest("hex"),
  };
  const query = Object.keys(params).sort().map((k) => `${k}=${params[k]}`).join("&");
  const signature = createHmac("sha256", app.secret).update(`POST\n${path}\n${query}`).digest("hex");
  const response = await fetch(`${server.url}${path}?${query}&auth_signature=${signature}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body,
  });
  if (response.status !== 200) throw new Error(`events answered ${response.status}: ${await response.text()}`);
}

before(async () => {
  server = await startPusherServer({ PUSHER_APPS: JSON.stringify([SHOP, CHAT]) });
});

after(async () => {
  for (const e of echos) e.disconnect();
  if (server) await server.close();
});

describe("several apps", () => {
  test("pusher-js connects with each key; an unknown key gets error 4001", async () => {
    for (const app of [SHOP, CHAT]) {
      const e = await echo(app);
      assert.match(e.socketId(), /^\d+\.\d+$/);
    }
    const stranger = makeEcho(server, { key: "no-such-key" });
    echos.push(stranger);
    const error = await once(
      (cb) => stranger.connector.pusher.connection.bind("error", (e) => e?.error?.data && cb(e.error)),
      { what: "pusher:error 4001" },
    );
    assert.equal(error.data.code, 4001);
  });

  test("events of one app never reach the other app's channel of the same name", async () => {
    const shop = await echo(SHOP, { userId: 5 });
    const chat = await echo(CHAT, { userId: 5 });
    const shopGot = new Recorder("shop");
    const chatGot = new Recorder("chat");
    // Private channels: /broadcasting/auth signs with the secret of the socket's app.
    await subscribed(shop.private("user.5").listen(".paid", shopGot.fn));
    await subscribed(chat.private("user.5").listen(".paid", chatGot.fn));
    await subscribed(shop.channel("orders").listen(".paid", shopGot.fn));
    await subscribed(chat.channel("orders").listen(".paid", chatGot.fn));
    await trigger(CHAT, ["private-user.5", "orders"], "paid", { app: "chat" });
    await trigger(SHOP, ["private-user.5", "orders"], "paid", { app: "shop" });
    // Each app's events arrive in order; the shop's clients see only the shop's two events.
    assert.deepEqual(await shopGot.next(), { app: "shop" });
    assert.deepEqual(await shopGot.next(), { app: "shop" });
    assert.deepEqual(await chatGot.next(), { app: "chat" });
    assert.deepEqual(await chatGot.next(), { app: "chat" });
    await trigger(SHOP, ["orders"], "paid", { app: "shop", n: 2 });
    assert.deepEqual(await shopGot.next(), { app: "shop", n: 2 });
    assert.equal(chatGot.count, 2);
  });
});
