/**
 * Helpers for the Laravel Echo / pusher-js tests: a real server with Pusher app credentials,
 * unmodified Echo + pusher-js clients pointed at it, and events triggered through the Pusher
 * HTTP API, signed here with node:crypto (independently of the server's code).
 */

import { createHash, createHmac } from "node:crypto";

import Echo from "laravel-echo";
import Pusher from "pusher-js";

import { makeToken, startServer } from "./helpers.mjs";

export const APP_ID = "424242";
export const APP_KEY = "echo-test-key";
export const APP_SECRET = "echo-test-secret-0123456789";
export const PUSHER_ENV = { PUSHER_APP_ID: APP_ID, PUSHER_APP_KEY: APP_KEY, PUSHER_APP_SECRET: APP_SECRET };

/** A server whose Pusher app is APP_ID / APP_KEY / APP_SECRET (`options.server`: see startServer). */
export function startPusherServer(env = {}, options = {}) {
  return startServer({ ...PUSHER_ENV, ...env }, options);
}

/**
 * An Echo instance (broadcaster "pusher") connected to `server` as user `userId` (a Bearer JWT
 * for /broadcasting/auth and /broadcasting/user-auth), or anonymous when `userId` is null.
 */
export function makeEcho(server, { userId = null, name, ...options } = {}) {
  const port = Number(new URL(server.url).port);
  const bearerToken = userId === null ? null : makeToken(userId, name ? { name } : {});
  return new Echo({
    broadcaster: "pusher",
    Pusher,
    key: APP_KEY,
    cluster: "mt1", // required by pusher-js; wsHost wins
    wsHost: "127.0.0.1",
    wsPort: port,
    wssPort: port,
    forceTLS: false,
    enabledTransports: ["ws"],
    disableStats: true,
    authEndpoint: `${server.url}/broadcasting/auth`,
    // Fresh header objects per instance: Echo writes the Bearer token into its (shared) default
    // `auth.headers` object, so several Echo instances in one process would share one user.
    auth: { headers: {} },
    userAuthentication: { endpoint: `${server.url}/broadcasting/user-auth`, headers: {} },
    bearerToken,
    ...options,
  });
}

/** Resolves once `echo`'s pusher connection is "connected" (rejects after `timeout` ms). */
export function echoConnected(echo, timeout = 10000) {
  const connection = echo.connector.pusher.connection;
  if (connection.state === "connected") return Promise.resolve(echo);
  return new Promise((done, reject) => {
    const timer = setTimeout(() => reject(new Error(`Echo not connected within ${timeout} ms (${connection.state})`)), timeout);
    const onChange = ({ current }) => {
      if (current === "connected") {
        clearTimeout(timer);
        connection.unbind("state_change", onChange);
        done(echo);
      }
    };
    connection.bind("state_change", onChange);
  });
}

/** POST a signed request to the Pusher HTTP API of `server`; resolves with the Response. */
export async function pusherApi(server, method, path, payload, { secret = APP_SECRET } = {}) {
  const body = payload === undefined ? "" : JSON.stringify(payload);
  const params = {
    auth_key: APP_KEY,
    auth_timestamp: String(Math.floor(Date.now() / 1000)),
    auth_version: "1.0",
  };
  if (body) params.body_md5 = createHash("md5").update(body).digest("hex");
  const query = Object.keys(params).sort().map((k) => `${k}=${params[k]}`).join("&");
  const signature = createHmac("sha256", secret).update(`${method}\n${path}\n${query}`).digest("hex");
  return fetch(`${server.url}${path}?${query}&auth_signature=${signature}`, {
    method,
    headers: body ? { "Content-Type": "application/json" } : {},
    body: body || undefined,
  });
}

/** Trigger `name` with `data` on `channels` through POST /apps/{id}/events. */
export async function trigger(server, channels, name, data, { socketId } = {}) {
  const payload = { name, channels, data: JSON.stringify(data) };
  if (socketId) payload.socket_id = socketId;
  const response = await pusherApi(server, "POST", `/apps/${APP_ID}/events`, payload);
  if (response.status !== 200) throw new Error(`events answered ${response.status}: ${await response.text()}`);
  return response.json();
}
