/**
 * django-broadcasting browser client: an ES module with no dependencies and no build step.
 *
 *   import { Broadcasting } from "/static/django_broadcasting/broadcasting.js";
 *   const bc = new Broadcasting({ url: "ws://127.0.0.1:8000/ws", token });
 *   bc.channel("general").listen("announcement", (data) => console.log(data));
 *   bc.private("user.5").notification((n) => alert(n.title));
 *   bc.join("chat.1").here((m) => ...).joining((m) => ...).leaving((m) => ...)
 *     .listenForWhisper("typing", (data, frame) => ...);
 *
 * It speaks the native JSON protocol of the server (docs/protocol.md): server frames are
 * {channel, event, data, timestamp[, id][, user_id]}, client frames {action, channel?, event?, data?}.
 * It reconnects with exponential backoff and jitter, resubscribes every channel (asking for
 * what it missed with the last message id it saw), pings below the server's activity timeout,
 * and refreshes its token through `refreshToken` when the server says it expired.
 * The full guide is docs/javascript.md.
 */

/** Connection states, in the order a healthy connection goes through them. */
export const STATES = Object.freeze({
  CONNECTING: "connecting",
  CONNECTED: "connected",
  RECONNECTING: "reconnecting",
  DISCONNECTED: "disconnected",
});

/** Close and error codes the client acts on (server/codes.py is the reference). */
export const CODES = Object.freeze({
  NORMAL: 1000,
  ABNORMAL: 1006,
  POLICY_VIOLATION: 1008,
  SERVICE_RESTART: 1012,
  TRY_AGAIN_LATER: 1013,
  UNAUTHORIZED: 4001,
  FORBIDDEN: 4003,
  RATE_LIMITED: 4008,
  TOKEN_EXPIRED: 4011,
  OVER_CAPACITY: 4100,
  RECONNECT: 4200,
  ACTIVITY_TIMEOUT: 4201,
  ERR_INVALID_CHANNEL: 4003,
  ERR_NOT_SUBSCRIBED: 4004,
  ERR_TOO_MANY_SUBSCRIPTIONS: 4029,
  ERR_FORBIDDEN: 4030,
  ERR_RECOVERY_FAILED: 4290,
});

const PRIVATE_PREFIX = "private-";
const ENCRYPTED_PREFIX = "private-encrypted-";
const PRESENCE_PREFIX = "presence-";
const PRESENCE_NAMESPACE = "presence.";
const WHISPER_PREFIX = "client-";
// Error codes that mean "this subscription was refused" (the channel is then not subscribed).
const REFUSALS = new Set([4002, 4003, 4010, 4029, 4030]);

/**
 * The one name the server uses for a channel: `private-X` is `X`, `presence-X` is `presence.X`
 * (what the server's authorization.canonical_name does), so frames find their channel object.
 * `private-encrypted-X` is a channel of its own and keeps its name.
 */
export function canonicalName(name) {
  if (typeof name !== "string" || !name) throw new TypeError("A channel name must be a non-empty string.");
  if (name.startsWith(ENCRYPTED_PREFIX)) return name;
  if (name.startsWith(PRIVATE_PREFIX)) name = name.slice(PRIVATE_PREFIX.length);
  if (name.startsWith(PRESENCE_PREFIX)) name = PRESENCE_NAMESPACE + name.slice(PRESENCE_PREFIX.length);
  return name;
}

/** `join("chat.1")` is `presence.chat.1`; a name that already says presence is kept. */
export function presenceName(name) {
  const canonical = canonicalName(name);
  return canonical.startsWith(PRESENCE_NAMESPACE) ? canonical : PRESENCE_NAMESPACE + canonical;
}

/** Laravel Echo writes `.Name` for "no namespace"; the server has no namespaces, so drop the dot. */
function eventName(event) {
  if (typeof event !== "string" || !event) throw new TypeError("An event name must be a non-empty string.");
  return event.startsWith(".") ? event.slice(1) : event;
}

function whisperName(event) {
  event = eventName(event);
  return event.startsWith(WHISPER_PREFIX) ? event : WHISPER_PREFIX + event;
}

/** Seconds since the epoch at which a JWT expires (read, not verified), or null. */
export function tokenExpiry(token) {
  if (typeof token !== "string") return null;
  const part = token.split(".")[1];
  if (!part) return null;
  try {
    const b64 = part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "=");
    const text = typeof atob === "function" ? atob(b64) : Buffer.from(b64, "base64").toString("binary");
    const exp = JSON.parse(text).exp;
    return typeof exp === "number" ? exp : null;
  } catch {
    return null;
  }
}

/** Call a user callback without letting its exception break the socket's message loop. */
function safely(fn, ...args) {
  try {
    fn(...args);
  } catch (err) {
    // Surface it like an uncaught error (window.onerror, the console) without stopping the
    // other callbacks or the handling of this frame.
    if (typeof globalThis.reportError === "function") {
      globalThis.reportError(err);
    } else {
      setTimeout(() => {
        throw err;
      }, 0);
    }
  }
}

/** A tiny event emitter: on(name, cb) returns a function that removes the listener. */
class Emitter {
  constructor() {
    this._listeners = new Map();
  }

  on(name, cb) {
    if (typeof cb !== "function") throw new TypeError("A callback must be a function.");
    if (!this._listeners.has(name)) this._listeners.set(name, new Set());
    this._listeners.get(name).add(cb);
    return () => this.off(name, cb);
  }

  off(name, cb) {
    const set = this._listeners.get(name);
    if (!set) return;
    if (cb === undefined) set.clear();
    else set.delete(cb);
    if (!set.size) this._listeners.delete(name);
  }

  has(name) {
    return this._listeners.has(name);
  }

  emit(name, ...args) {
    const set = this._listeners.get(name);
    if (!set) return;
    for (const cb of [...set]) safely(cb, ...args);
  }
}

/** One channel: public or private (the server decides which and says so in `subscribed`). */
export class Channel {
  constructor(client, name) {
    this.client = client;
    /** The canonical name (what the server and the frames call it). */
    this.name = name;
    /** "public" | "private" | "presence", from the server's `subscribed` frame. */
    this.type = null;
    /** True between the server's `subscribed` and a disconnect, refusal or leave. */
    this.isSubscribed = false;
    /** The id of the last message seen on this channel (sent as `last_id` on resubscribe). */
    this.lastId = null;
    this._events = new Emitter();
  }

  /** Call `cb(data, frame)` for every `event` broadcast on this channel. */
  listen(event, cb) {
    this._events.on("event:" + eventName(event), cb);
    return this;
  }

  /** Call `cb(event, data, frame)` for every broadcast and whisper on this channel. */
  listenToAll(cb) {
    this._events.on("*", cb);
    return this;
  }

  /** Stop `cb` (or every callback) listening for `event`. */
  stopListening(event, cb) {
    this._events.off("event:" + eventName(event), cb);
    return this;
  }

  stopListeningToAll(cb) {
    this._events.off("*", cb);
    return this;
  }

  /** Listen for `notify_user()` notifications (event `notification`). */
  notification(cb) {
    return this.listen("notification", cb);
  }

  /** Call `cb(data, frame)` when another client whispers `event`; `frame.user_id` is who, on presence. */
  listenForWhisper(event, cb) {
    return this.listen(whisperName(event), cb);
  }

  stopListeningForWhisper(event, cb) {
    return this.stopListening(whisperName(event), cb);
  }

  /** Send `event` with `data` to the other subscribers (private and presence channels only). */
  whisper(event, data) {
    this.client._send({ action: "whisper", channel: this.name, event: whisperName(event), data: data ?? {} });
    return this;
  }

  /** Call `cb(data)` each time the server confirms the subscription (also after a reconnect). */
  subscribed(cb) {
    this._events.on("subscribed", cb);
    if (this.isSubscribed) safely(cb, { channel: this.name, type: this.type });
    return this;
  }

  /** Call `cb({code, message})` when the server refuses this channel or reports an error on it. */
  error(cb) {
    this._events.on("error", cb);
    return this;
  }

  /** Leave the channel (same as `client.leaveChannel(name)`). */
  unsubscribe() {
    this.client.leaveChannel(this.name);
  }

  _subscribeFrame() {
    const frame = { action: "subscribe", channel: this.name };
    if (this.lastId !== null && this.lastId !== undefined) frame.last_id = this.lastId;
    return frame;
  }

  _onSubscribed(frame) {
    const data = frame.data || {};
    this.type = data.type || this.type;
    this.isSubscribed = true;
    this._events.emit("subscribed", data, frame);
  }

  _onError(data, frame) {
    if (REFUSALS.has(data.code)) this.isSubscribed = false;
    if (!this._events.has("error")) {
      // Nobody listens for this channel's errors: a refusal would otherwise pass in silence.
      console.warn(`[broadcasting] channel "${this.name}": ${data.message || "error"} (${data.code})`);
    }
    this._events.emit("error", data, frame);
  }

  _onEvent(frame) {
    if (frame.id !== undefined && frame.id !== null) this.lastId = frame.id;
    const data = frame.data;
    this._events.emit("event:" + frame.event, data, frame);
    this._events.emit("*", frame.event, data, frame);
  }

  _onDisconnect() {
    this.isSubscribed = false;
  }
}

/** A presence channel: who is here, who joins and who leaves. Members are `{id, info}`. */
export class PresenceChannel extends Channel {
  constructor(client, name) {
    super(client, name);
    /** The current members, `[{id, info}]`, kept up to date. */
    this.members = [];
    /** This connection's own member entry, from the `subscribed` frame. */
    this.me = null;
  }

  /** Call `cb(members)` with everyone present on each (re)subscription. */
  here(cb) {
    this._events.on("here", cb);
    if (this.isSubscribed) safely(cb, this.members.slice());
    return this;
  }

  /** Call `cb(member)` when someone joins. */
  joining(cb) {
    this._events.on("joining", cb);
    return this;
  }

  /** Call `cb(member)` when someone leaves (their last connection closed). */
  leaving(cb) {
    this._events.on("leaving", cb);
    return this;
  }

  _onSubscribed(frame) {
    const data = frame.data || {};
    this.members = Array.isArray(data.members) ? data.members.slice() : [];
    this.me = data.me || null;
    super._onSubscribed(frame);
    this._events.emit("here", this.members.slice());
  }

  _onEvent(frame) {
    const member = frame.data || {};
    if (frame.event === "member_added") {
      if (!this.members.some((m) => String(m.id) === String(member.id))) this.members.push(member);
      this._events.emit("joining", member);
    } else if (frame.event === "member_removed") {
      // The server sends only the id; hand leaving() the info we were given when they joined.
      const known = this.members.find((m) => String(m.id) === String(member.id));
      this.members = this.members.filter((m) => m !== known);
      this._events.emit("leaving", known ? { ...known, ...member, info: known.info } : member);
    }
    super._onEvent(frame);
  }
}

/**
 * The connection. Options:
 *   url            WebSocket endpoint, e.g. "ws://127.0.0.1:8000/ws" (required)
 *   token          a JWT (sent as ?auth_token=...), or null for anonymous / session-cookie auth
 *   refreshToken   async () => newToken, called when the token expired (error/close 4011)
 *   WebSocket      a WebSocket constructor (Node: `import WebSocket from "ws"`); default: the global one
 *   reconnect      {minDelay: 500, maxDelay: 30000} in ms, or false to never reconnect
 *   pingInterval   ms between pings; default: half the server's activity_timeout, at most 30 s
 *   pongTimeout    ms to wait for a pong before the connection counts as dead (default 10000)
 *   maxFramesPerSecond  pace of frames sent (default 40, below the server's default limit of 50)
 *   autoConnect    connect at once (default true)
 *   debug          log frames to the console
 */
export class Broadcasting {
  constructor(options = {}) {
    if (!options || typeof options.url !== "string" || !options.url) {
      throw new TypeError("new Broadcasting({url}) needs the WebSocket URL, e.g. ws://host:port/ws");
    }
    this.options = options;
    this.url = options.url;
    this.token = options.token ?? null;
    this.WebSocket = options.WebSocket || globalThis.WebSocket;
    if (typeof this.WebSocket !== "function") {
      throw new TypeError("No WebSocket implementation: pass {WebSocket} (in Node: the 'ws' package).");
    }
    const rc = options.reconnect === undefined ? {} : options.reconnect;
    this.reconnectOptions = rc === false ? null : { minDelay: 500, maxDelay: 30000, ...rc };
    this.pongTimeout = options.pongTimeout ?? 10000;
    this.debug = Boolean(options.debug);
    /** Laravel Echo keeps the transport in `echo.connector`; here the client is its own connector. */
    this.connector = this;
    this.state = STATES.DISCONNECTED;
    this.userId = null;
    this.activityTimeout = null;
    this.channels = new Map();
    this._emitter = new Emitter();
    this._ws = null;
    this._socketId = null;
    this._attempts = 0;
    this._timers = { reconnect: null, ping: null, pong: null, flush: null };
    this.maxFramesPerSecond = options.maxFramesPerSecond ?? 40;
    this._queue = [];
    this._tokens = this.maxFramesPerSecond;
    this._tokensAt = Date.now();
    this._wanted = false;
    this._tokenExpired = false;
    this._generation = 0;
    this._onOnline = () => this._retryNow();
    if (options.autoConnect !== false) this.connect();
  }

  // -- channels ----------------------------------------------------------------------------
  /** A public channel (or any channel: the server decides its kind). */
  channel(name) {
    return this._channel(canonicalName(name));
  }

  /** A private channel: `private("orders.1")` and `private("private-orders.1")` are `orders.1`. */
  private(name) {
    return this._channel(canonicalName(name));
  }

  /**
   * The end-to-end encrypted channel `private-encrypted-<name>` (authorized by the rule of `name`).
   * Its events arrive sealed, as `{nonce, ciphertext}`: this client does not decrypt them (pusher-js
   * and Laravel Echo do; see docs/encrypted-channels.md).
   */
  encryptedPrivate(name) {
    const canonical = canonicalName(name);
    return this._channel(canonical.startsWith(ENCRYPTED_PREFIX) ? canonical : ENCRYPTED_PREFIX + canonical);
  }

  /** A presence channel: `join("chat.1")` joins `presence.chat.1`. */
  join(name) {
    return this._channel(presenceName(name), PresenceChannel);
  }

  /** Shorthand for `channel(name).listen(event, cb)`. */
  listen(name, event, cb) {
    return this.channel(name).listen(event, cb);
  }

  /** Leave `name` whatever it was opened as: `name`, `private-name` and `presence.name`. */
  leave(name) {
    const canonical = canonicalName(name);
    this.leaveChannel(canonical);
    if (!canonical.startsWith(PRESENCE_NAMESPACE)) this.leaveChannel(PRESENCE_NAMESPACE + canonical);
  }

  /** Leave exactly this channel. */
  leaveChannel(name) {
    const canonical = canonicalName(name);
    const channel = this.channels.get(canonical);
    if (!channel) return;
    this.channels.delete(canonical);
    // Also when the subscribe is still unanswered: the server may be about to confirm it.
    if (this.state === STATES.CONNECTED) this._send({ action: "unsubscribe", channel: canonical });
    channel._onDisconnect();
  }

  /** Leave every channel. */
  leaveAllChannels() {
    for (const name of [...this.channels.keys()]) this.leaveChannel(name);
  }

  _channel(name, Kind) {
    // Whatever method opened it, a presence.* channel is a presence channel.
    Kind = Kind || (name.startsWith(PRESENCE_NAMESPACE) ? PresenceChannel : Channel);
    let channel = this.channels.get(name);
    if (!channel) {
      channel = new Kind(this, name);
      this.channels.set(name, channel);
      if (this.state === STATES.CONNECTED) this._send(channel._subscribeFrame());
    }
    return channel;
  }

  // -- connection --------------------------------------------------------------------------
  /** The server's id for this connection: send it as `X-Socket-ID` so `to_others()` skips you. */
  socketId() {
    return this._socketId;
  }

  /** Headers for `fetch` that make the server's `to_others()` leave this connection out. */
  socketHeaders() {
    return this._socketId ? { "X-Socket-ID": this._socketId } : {};
  }

  /**
   * Listen for client events: "state" (cb(state, previous)), "connected" (cb(socketId)),
   * "disconnected" (cb({code, reason, reconnecting})), "error" (cb({code, message}, frame)),
   * "message" (cb(frame), every frame). Returns a function that removes the listener.
   */
  on(name, cb) {
    return this._emitter.on(name, cb);
  }

  off(name, cb) {
    this._emitter.off(name, cb);
  }

  /** Call `cb(state, previous)` on every state change. */
  onStateChange(cb) {
    return this.on("state", cb);
  }

  /** Open the connection (done by the constructor unless `autoConnect: false`). */
  connect() {
    // A browser that comes back online need not wait out the backoff.
    if (!this._wanted && typeof globalThis.addEventListener === "function") {
      globalThis.addEventListener("online", this._onOnline);
    }
    this._wanted = true;
    if (this._ws || this._timers.reconnect || this._opening) return this;
    this._setState(this._attempts ? STATES.RECONNECTING : STATES.CONNECTING);
    this._open();
    return this;
  }

  /** Close the connection for good (until `connect()` is called again). */
  disconnect() {
    const wasDown = this.state === STATES.DISCONNECTED;
    this._unwant();
    this._clearTimers();
    this._attempts = 0;
    const ws = this._ws;
    this._detach();
    if (ws) {
      try {
        ws.close(CODES.NORMAL);
      } catch {
        // Closing a socket that is still connecting throws in some implementations.
      }
    }
    this._socketId = null;
    for (const channel of this.channels.values()) channel._onDisconnect();
    if (!wasDown) this._emitter.emit("disconnected", { code: CODES.NORMAL, reason: "disconnect()", reconnecting: false });
    this._setState(STATES.DISCONNECTED);
  }

  /** Replace the token used by the next connection. */
  setToken(token) {
    this.token = token ?? null;
    this._tokenExpired = false;
  }

  async _open() {
    const generation = ++this._generation;
    this._opening = true;
    try {
      if (this._tokenExpired || this._tokenStale()) await this._refresh();
    } catch (err) {
      this._opening = false;
      if (generation !== this._generation) return;
      this._fail({ code: CODES.TOKEN_EXPIRED, message: `Token refresh failed: ${err && err.message}` });
      return;
    }
    this._opening = false;
    if (generation !== this._generation || !this._wanted) return;
    let ws;
    try {
      ws = new this.WebSocket(this._connectUrl());
    } catch (err) {
      // The constructor throws for a malformed URL or a forbidden one: trying again cannot help.
      this._fail({ code: CODES.ABNORMAL, message: `Cannot open ${this.url}: ${err && err.message}` });
      return;
    }
    this._ws = ws;
    this._greeted = false;
    ws.onmessage = (ev) => this._onMessage(ev.data);
    ws.onclose = (ev) => this._onClose(ev.code, ev.reason);
    // An error is always followed by a close event; the close decides what to do.
    ws.onerror = () => {};
  }

  _connectUrl() {
    if (!this.token) return this.url;
    const sep = this.url.includes("?") ? "&" : "?";
    return `${this.url}${sep}auth_token=${encodeURIComponent(this.token)}`;
  }

  /** True when the token has an `exp` that has passed (the handshake would get a 403). */
  _tokenStale() {
    if (!this.token || typeof this.options.refreshToken !== "function") return false;
    const exp = tokenExpiry(this.token);
    return exp !== null && exp * 1000 <= Date.now() + 1000;
  }

  async _refresh() {
    if (typeof this.options.refreshToken !== "function") throw new Error("no refreshToken callback");
    const token = await this.options.refreshToken();
    if (typeof token !== "string" || !token) throw new Error("refreshToken returned no token");
    this.token = token;
    this._tokenExpired = false;
    this._emitter.emit("token", token);
  }

  /** Queue a frame for the open connection; false when there is none (the frame is dropped). */
  _send(frame) {
    const ws = this._ws;
    if (!ws || !this._greeted || ws.readyState !== 1) return false;
    this._log("send", frame);
    this._queue.push(JSON.stringify(frame));
    this._flush();
    return true;
  }

  /**
   * Write queued frames at most `maxFramesPerSecond` a second (a token bucket of that size).
   * The server drops frames above its CLIENT_RATE_LIMIT and closes persistent offenders with
   * 4008, so a resubscription to many channels or a chatty typing indicator is paced here.
   */
  _flush() {
    const ws = this._ws;
    if (!ws || ws.readyState !== 1) return;
    const rate = this.maxFramesPerSecond;
    const now = Date.now();
    this._tokens = Math.min(rate, this._tokens + ((now - this._tokensAt) / 1000) * rate);
    this._tokensAt = now;
    while (this._queue.length && this._tokens >= 1) {
      ws.send(this._queue.shift());
      this._tokens -= 1;
    }
    if (this._queue.length && !this._timers.flush) {
      this._timers.flush = setTimeout(() => {
        this._timers.flush = null;
        this._flush();
      }, Math.ceil(((1 - this._tokens) / rate) * 1000));
    }
  }

  _onMessage(raw) {
    let frame;
    try {
      frame = JSON.parse(typeof raw === "string" ? raw : String(raw));
    } catch {
      this._log("unreadable frame", raw);
      return;
    }
    if (!frame || typeof frame !== "object") return;
    this._log("recv", frame);
    this._emitter.emit("message", frame);
    const channel = frame.channel ? this.channels.get(frame.channel) : null;
    switch (frame.event) {
      case "connected":
        if (!frame.channel) return this._onConnected(frame.data || {});
        break;
      case "pong":
        if (!frame.channel) return this._onPong();
        break;
      case "error":
        return this._onError(frame.data || {}, frame, channel);
      case "subscribed":
        if (channel) channel._onSubscribed(frame);
        return;
      case "unsubscribed":
        return;
      case "recovery_failed":
        if (channel) channel._onError({ code: CODES.ERR_RECOVERY_FAILED, message: "Missed messages could not be recovered." }, frame);
        break;
      default:
        break;
    }
    if (channel) channel._onEvent(frame);
  }

  _onConnected(data) {
    this._greeted = true;
    this._socketId = data.socket_id ?? null;
    this.userId = data.user_id ?? null;
    this.activityTimeout = typeof data.activity_timeout === "number" ? data.activity_timeout : null;
    this._attempts = 0;
    // Resubscribe before telling anyone: a callback that opens a channel subscribes it itself.
    for (const channel of [...this.channels.values()]) this._send(channel._subscribeFrame());
    this._schedulePing();
    this._setState(STATES.CONNECTED);
    this._emitter.emit("connected", this._socketId);
  }

  /** Channel errors go to that channel's `.error()`; connection errors to `on("error")`. */
  _onError(data, frame, channel) {
    if (data.code === CODES.TOKEN_EXPIRED) this._tokenExpired = true;
    if (channel) return channel._onError(data, frame);
    // "Not subscribed" about a channel already left is the answer to our own late unsubscribe.
    if (frame.channel && data.code === CODES.ERR_NOT_SUBSCRIBED) return;
    this._emitter.emit("error", data, frame);
  }

  // -- keepalive ---------------------------------------------------------------------------
  _pingInterval() {
    if (typeof this.options.pingInterval === "number" && this.options.pingInterval > 0) {
      return this.options.pingInterval;
    }
    // The server closes (4201) after activity_timeout seconds without a client frame.
    const timeout = this.activityTimeout;
    return timeout ? Math.max(500, Math.min(30000, (timeout * 1000) / 2)) : 30000;
  }

  _schedulePing() {
    clearTimeout(this._timers.ping);
    this._timers.ping = setTimeout(() => this._ping(), this._pingInterval());
  }

  /** Send a ping now; the connection is dropped and reopened if no pong comes back in time. */
  _ping() {
    if (!this._send({ action: "ping" })) return;
    clearTimeout(this._timers.pong);
    this._timers.pong = setTimeout(() => {
      this._log("no pong: connection is dead");
      this._drop(CODES.ABNORMAL, "pong timeout");
    }, this.pongTimeout);
  }

  _onPong() {
    clearTimeout(this._timers.pong);
    this._timers.pong = null;
    this._schedulePing();
  }

  // -- closing and reconnecting --------------------------------------------------------------
  /** Abandon the current socket as if it had closed with `code` (a dead TCP link never says so). */
  _drop(code, reason) {
    const ws = this._ws;
    this._detach();
    if (ws) {
      try {
        ws.close();
      } catch {
        // ignore: the socket is being abandoned either way
      }
    }
    this._onClose(code, reason, true);
  }

  _detach() {
    const ws = this._ws;
    this._ws = null;
    // Unsent frames belonged to that connection; resubscribing rebuilds what matters.
    this._queue.length = 0;
    clearTimeout(this._timers.flush);
    this._timers.flush = null;
    this._greeted = false;
    this._generation++;
    this._opening = false;
    if (ws) ws.onmessage = ws.onclose = ws.onerror = null;
  }

  _onClose(code, reason, detached = false) {
    if (!detached) this._detach();
    clearTimeout(this._timers.ping);
    clearTimeout(this._timers.pong);
    this._socketId = null;
    for (const channel of this.channels.values()) channel._onDisconnect();
    code = code || CODES.ABNORMAL;
    this._log("closed", code, reason);
    if (!this._wanted) {
      this._setState(STATES.DISCONNECTED);
      return;
    }
    if (code === CODES.TOKEN_EXPIRED) this._tokenExpired = true;
    if (this._tokenExpired && typeof this.options.refreshToken !== "function") {
      return this._fail({ code, message: reason || "Token expired and no refreshToken callback was given." });
    }
    if (!this._tokenExpired && !this._mayReconnect(code)) {
      return this._fail({ code, message: reason || "The server closed the connection." });
    }
    this._emitter.emit("disconnected", { code, reason: reason || "", reconnecting: true });
    this._scheduleReconnect(code);
  }

  /** 40xx close codes mean "do not come back without changing something" (server/codes.py). */
  _mayReconnect(code) {
    if (!this.reconnectOptions) return false;
    if (code === CODES.POLICY_VIOLATION) return false;
    return !(code >= 4000 && code < 4100);
  }

  _fail(error) {
    this._unwant();
    this._clearTimers();
    this._attempts = 0;
    this._emitter.emit("error", error, null);
    this._emitter.emit("disconnected", { code: error.code, reason: error.message, reconnecting: false });
    this._setState(STATES.DISCONNECTED);
  }

  _scheduleReconnect(code) {
    if (!this.reconnectOptions) return this._fail({ code, message: "Disconnected." });
    const delay = this._backoff(code, this._attempts);
    this._attempts++;
    this._setState(STATES.RECONNECTING);
    clearTimeout(this._timers.reconnect);
    this._timers.reconnect = setTimeout(() => {
      this._timers.reconnect = null;
      if (this._wanted) this._open();
    }, delay);
  }

  /**
   * Milliseconds before reconnect attempt number `attempt` (0-based): minDelay doubling up to
   * maxDelay, randomised over its upper half so that clients dropped together (a server restart)
   * do not all come back in the same instant. 42xx codes and an expired token ask for a prompt
   * return, so their first attempt waits only a quarter to a half of minDelay.
   */
  _backoff(code, attempt) {
    const { minDelay, maxDelay } = this.reconnectOptions;
    const prompt = (code >= 4200 && code < 4300) || code === CODES.TOKEN_EXPIRED;
    const base = prompt && attempt === 0 ? minDelay / 2 : Math.min(maxDelay, minDelay * 2 ** attempt);
    return Math.round(base / 2 + Math.random() * (base / 2));
  }

  /** Stop wanting a connection: no reconnects, no "online" listener. */
  _unwant() {
    this._wanted = false;
    if (typeof globalThis.removeEventListener === "function") {
      globalThis.removeEventListener("online", this._onOnline);
    }
  }

  _retryNow() {
    if (!this._wanted || !this._timers.reconnect) return;
    clearTimeout(this._timers.reconnect);
    this._timers.reconnect = null;
    this._open();
  }

  _clearTimers() {
    for (const key of Object.keys(this._timers)) {
      clearTimeout(this._timers[key]);
      this._timers[key] = null;
    }
  }

  _setState(state) {
    const previous = this.state;
    if (state === previous) return;
    this.state = state;
    this._emitter.emit("state", state, previous);
  }

  _log(...args) {
    if (this.debug) console.debug("[broadcasting]", ...args);
  }
}

export default Broadcasting;
