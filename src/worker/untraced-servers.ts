/**
 * Servers forktrace runs inside the app (the Prometheus scrape endpoint): the http
 * instrumentation leaves their requests alone, since a scrape is not the app's traffic and must
 * not show up as spans or in http.server.request.duration.
 *
 * On globalThis: the preload bundle holds one copy of this module and the metrics code, loaded
 * from dist/ only when metrics are on (scripts/bundle.mjs), another.
 */
const KEY = Symbol.for('forktrace.untracedServers');
const g = globalThis as typeof globalThis & { [KEY]?: WeakSet<object> };
export const UNTRACED_SERVERS: WeakSet<object> = (g[KEY] ??= new WeakSet<object>());

/** Whether a request arrived on one of those servers (a server-side socket knows its server). */
export function onUntracedServer(req: { socket?: unknown }): boolean {
  const server = (req.socket as { server?: object } | undefined)?.server;
  return server !== undefined && UNTRACED_SERVERS.has(server);
}
