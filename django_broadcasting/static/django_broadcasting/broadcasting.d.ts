/**
 * Types of the django-broadcasting browser client (broadcasting.js). See docs/javascript.md.
 */

export type ConnectionState = "connecting" | "connected" | "reconnecting" | "disconnected";

export declare const STATES: Readonly<{
  CONNECTING: "connecting";
  CONNECTED: "connected";
  RECONNECTING: "reconnecting";
  DISCONNECTED: "disconnected";
}>;

/** Close and error codes the client acts on (server/codes.py is the reference). */
export declare const CODES: Readonly<{
  NORMAL: 1000;
  ABNORMAL: 1006;
  POLICY_VIOLATION: 1008;
  SERVICE_RESTART: 1012;
  TRY_AGAIN_LATER: 1013;
  UNAUTHORIZED: 4001;
  FORBIDDEN: 4003;
  RATE_LIMITED: 4008;
  TOKEN_EXPIRED: 4011;
  OVER_CAPACITY: 4100;
  RECONNECT: 4200;
  ACTIVITY_TIMEOUT: 4201;
  ERR_INVALID_CHANNEL: 4003;
  ERR_NOT_SUBSCRIBED: 4004;
  ERR_TOO_MANY_SUBSCRIPTIONS: 4029;
  ERR_FORBIDDEN: 4030;
  ERR_RECOVERY_FAILED: 4290;
}>;

/** A frame the server sends. */
export interface Frame<T = any> {
  channel: string | null;
  event: string;
  data: T;
  timestamp: string;
  /** Present where the server keeps history; sent back as `last_id` on resubscribe. */
  id?: string | number;
  /** The whisperer's user id, on presence-channel whispers. */
  user_id?: string;
}

/** The data of an error frame (and of the client's own errors). */
export interface BroadcastingError {
  code: number;
  message: string;
}

/** A presence member as the server describes it. */
export interface Member<Info = Record<string, any>> {
  id: string;
  info: Info;
}

export interface SubscribedData {
  channel: string;
  type: "public" | "private" | "presence";
  members?: Member[];
  count?: number;
  me?: Member;
}

/** What a `WebSocket` constructor must look like (the browser's, or `ws` in Node). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onmessage: ((event: { data: any }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: any) => void) | null;
}
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

export interface BroadcastingOptions {
  /** The WebSocket endpoint, e.g. `ws://127.0.0.1:8000/ws`. */
  url: string;
  /** A JWT (audience `websocket`) sent as `?auth_token=`; omit for anonymous or session-cookie auth. */
  token?: string | null;
  /** Called for a new token when the server says the current one expired (4011) or it has expired. */
  refreshToken?: () => Promise<string> | string;
  /** The WebSocket implementation; defaults to `globalThis.WebSocket`. In Node pass `ws`. */
  WebSocket?: WebSocketConstructor;
  /** Backoff bounds in ms (defaults 500 and 30000), or `false` to never reconnect. */
  reconnect?: { minDelay?: number; maxDelay?: number } | false;
  /** Ms between keepalive pings; default half the server's `activity_timeout`, at most 30 s. */
  pingInterval?: number;
  /** Ms to wait for a pong before the connection counts as dead (default 10000). */
  pongTimeout?: number;
  /** Frames sent per second at most, extra ones are queued (default 40; the server's default limit is 50). */
  maxFramesPerSecond?: number;
  /** Connect in the constructor (default true). */
  autoConnect?: boolean;
  /** Log every frame with `console.debug`. */
  debug?: boolean;
}

export interface DisconnectInfo {
  code: number;
  reason: string;
  /** Whether the client will try again by itself. */
  reconnecting: boolean;
}

export interface ClientEvents {
  state: (state: ConnectionState, previous: ConnectionState) => void;
  connected: (socketId: string) => void;
  disconnected: (info: DisconnectInfo) => void;
  error: (error: BroadcastingError, frame: Frame | null) => void;
  message: (frame: Frame) => void;
  token: (token: string) => void;
}

export declare class Channel {
  readonly client: Broadcasting;
  /** The canonical name: `private-X` is `X`, `presence-X` is `presence.X`. */
  readonly name: string;
  type: "public" | "private" | "presence" | null;
  isSubscribed: boolean;
  /** Id of the last message seen (sent as `last_id` when resubscribing). */
  lastId: string | number | null;
  /** `cb(data, frame)` for every `event` on this channel; a leading `.` is ignored. */
  listen<T = any>(event: string, cb: (data: T, frame: Frame<T>) => void): this;
  /** `cb(event, data, frame)` for every broadcast and whisper on this channel. */
  listenToAll(cb: (event: string, data: any, frame: Frame) => void): this;
  stopListening(event: string, cb?: (...args: any[]) => void): this;
  stopListeningToAll(cb?: (...args: any[]) => void): this;
  /** Listen for `notify_user()` notifications (event `notification`). */
  notification<T = { title: string; message: string; action_url: string | null; timestamp: string }>(
    cb: (data: T, frame: Frame<T>) => void,
  ): this;
  listenForWhisper<T = any>(event: string, cb: (data: T, frame: Frame<T>) => void): this;
  stopListeningForWhisper(event: string, cb?: (...args: any[]) => void): this;
  /** Send `client-<event>` to the other subscribers (private and presence channels only). */
  whisper(event: string, data?: any): this;
  /** `cb(data)` each time the server confirms the subscription (also after reconnects). */
  subscribed(cb: (data: SubscribedData, frame?: Frame<SubscribedData>) => void): this;
  /** `cb({code, message})` when the server refuses the channel or reports an error on it. */
  error(cb: (error: BroadcastingError, frame?: Frame<BroadcastingError>) => void): this;
  unsubscribe(): void;
}

export declare class PresenceChannel<Info = Record<string, any>> extends Channel {
  members: Member<Info>[];
  me: Member<Info> | null;
  /** `cb(members)` with everyone present, on each (re)subscription. */
  here(cb: (members: Member<Info>[]) => void): this;
  joining(cb: (member: Member<Info>) => void): this;
  leaving(cb: (member: Member<Info>) => void): this;
}

export declare class Broadcasting {
  constructor(options: BroadcastingOptions);
  readonly options: BroadcastingOptions;
  readonly url: string;
  token: string | null;
  state: ConnectionState;
  /** The `user_id` the server greeted this connection with (null when anonymous). */
  userId: string | null;
  /** The server's activity timeout in seconds (from the greeting). */
  activityTimeout: number | null;
  readonly channels: Map<string, Channel>;
  /** Laravel Echo keeps its transport in `connector`; here it is the client itself. */
  readonly connector: Broadcasting;
  maxFramesPerSecond: number;

  channel(name: string): Channel;
  private(name: string): Channel;
  /** `private-encrypted-<name>`: events arrive sealed (`{nonce, ciphertext}`), not decrypted. */
  encryptedPrivate(name: string): Channel;
  /** `join("chat.1")` joins `presence.chat.1`. */
  join<Info = Record<string, any>>(name: string): PresenceChannel<Info>;
  listen<T = any>(channel: string, event: string, cb: (data: T, frame: Frame<T>) => void): Channel;
  /** Leave `name`, its `private-` form and its `presence.` form. */
  leave(name: string): void;
  leaveChannel(name: string): void;
  leaveAllChannels(): void;

  /** The server's id for this connection (send as `X-Socket-ID` so `to_others()` skips it). */
  socketId(): string | null;
  /** `{"X-Socket-ID": socketId}` for `fetch`, or `{}` when not connected. */
  socketHeaders(): Record<string, string>;

  on<K extends keyof ClientEvents>(event: K, cb: ClientEvents[K]): () => void;
  off<K extends keyof ClientEvents>(event: K, cb?: ClientEvents[K]): void;
  onStateChange(cb: ClientEvents["state"]): () => void;

  connect(): this;
  disconnect(): void;
  setToken(token: string | null): void;
}

export declare function canonicalName(name: string): string;
export declare function presenceName(name: string): string;
/** The `exp` claim of a JWT (read, not verified), or null. */
export declare function tokenExpiry(token: string): number | null;

export default Broadcasting;
