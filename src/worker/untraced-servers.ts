/**
 * Servers forktrace runs inside the app (the Prometheus scrape endpoint): the http
 * instrumentation leaves their requests alone, since a scrape is not the app's traffic and must
 * not show up as spans or in http.server.request.duration.
 */
export const UNTRACED_SERVERS = new WeakSet<object>();

/** Whether a request arrived on one of those servers (a server-side socket knows its server). */
export function onUntracedServer(req: { socket?: unknown }): boolean {
  const server = (req.socket as { server?: object } | undefined)?.server;
  return server !== undefined && UNTRACED_SERVERS.has(server);
}
