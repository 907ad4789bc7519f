/**
 * A server span's request attributes, as instrumentation-http's `getIncomingRequestAttributes`
 * (0.301.0) gives them, without parsing the request's URL with `new URL` when it is plain.
 *
 * Why: upstream builds a URL object from the request line and the Host header for each sampled
 * request, to read its path; on Node 24 that parse was the costliest single function of
 * forktrace's own in a CPU profile of the bench's load (BENCHMARKS.md, change 12).
 *
 * Plain means: an origin-form path (one `/`, then only characters the URL parser keeps as they
 * are, no dot segment, no query), a Host header already seen to make a valid URL, no `Forwarded`
 * or `X-Forwarded-*` header, and no synthetic-source detection. For such a request the URL's
 * path is the request's path, and every other attribute is computed as upstream computes it.
 * Anything else goes to upstream's helper. test/request-attributes.test.mjs compares the two.
 */
import type { IncomingMessage } from 'node:http';
import type { Attributes } from '@opentelemetry/api';
import {
  ATTR_CLIENT_ADDRESS,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_REQUEST_METHOD_ORIGINAL,
  ATTR_NETWORK_PEER_ADDRESS,
  ATTR_NETWORK_PEER_PORT,
  ATTR_NETWORK_PROTOCOL_VERSION,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_URL_PATH,
  ATTR_URL_SCHEME,
  ATTR_USER_AGENT_ORIGINAL,
  HTTP_REQUEST_METHOD_VALUE_OTHER,
} from '@opentelemetry/semantic-conventions';

/** The options upstream's helper takes. */
export interface RequestAttributeOptions {
  component: string;
  hookAttributes?: Attributes;
  enableSyntheticSourceDetection: boolean;
  redactedQueryParams?: string[];
}

export type RequestAttributes = (
  request: IncomingMessage,
  options: RequestAttributeOptions,
  logger: unknown,
) => Attributes;

/**
 * A path the URL parser leaves as it is: `/`, then unreserved and sub-delimiter characters, `:`,
 * `@`, `/` and `%`, with no `//` at the start (that would be a host), and none of `?`, `#`, `\`,
 * spaces, quotes or controls.
 */
const PLAIN_PATH = /^\/(?!\/)[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*$/;
/** A dot segment, written plainly or percent-encoded (the parser removes both). */
const DOT_SEGMENT = /\/\.|%2e/i;

/** The methods the HTTP semantic conventions name. */
const KNOWN_METHODS = new Set([
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'DELETE',
  'CONNECT',
  'OPTIONS',
  'TRACE',
  'PATCH',
  'QUERY',
]);

/** A request's method as the semantic conventions want it: any method not named there is `_OTHER` (upstream's normalizeMethod). */
export function normalizeMethod(method: string | undefined | null): string {
  if (method == null) return 'GET';
  const upper = method.toUpperCase();
  return KNOWN_METHODS.has(upper) ? upper : HTTP_REQUEST_METHOD_VALUE_OTHER;
}

/** Whether `scheme://host` parses, by Host header: a service sees a handful of them. */
const validBases = new Map<string, boolean>();
const MAX_BASES = 64;

function validBase(scheme: string, host: string): boolean {
  const base = `${scheme}://${host}`;
  let valid = validBases.get(base);
  if (valid === undefined) {
    try {
      new URL('/', base);
      valid = true;
    } catch {
      valid = false;
    }
    if (validBases.size < MAX_BASES) validBases.set(base, valid);
  }
  return valid;
}

/** upstream's helper, with the plain case done here. */
export function fastRequestAttributes(upstream: RequestAttributes): RequestAttributes {
  return (request, options, logger) => {
    const { headers } = request;
    const url = request.url ?? '/';
    const host = headers.host;
    if (
      options.enableSyntheticSourceDetection ||
      headers.forwarded !== undefined ||
      headers['x-forwarded-for'] !== undefined ||
      headers['x-forwarded-host'] !== undefined ||
      typeof host !== 'string' ||
      host.length === 0 ||
      !PLAIN_PATH.test(url) ||
      DOT_SEGMENT.test(url) ||
      !validBase(options.component, host)
    ) {
      return upstream(request, options, logger);
    }
    const { method } = request;
    const normalized = normalizeMethod(method);
    // upstream's parseHostHeader for a Host header of one or two parts (a third is an IPv6 address).
    const parts = host.split(':');
    if (parts.length > 2) return upstream(request, options, logger);
    const port =
      parts.length === 2
        ? parts[1]
        : options.component === 'http'
          ? '80'
          : options.component === 'https'
            ? '443'
            : undefined;
    const remote = request.socket.remoteAddress;
    const attributes: Attributes = {
      [ATTR_HTTP_REQUEST_METHOD]: normalized,
      [ATTR_URL_SCHEME]: options.component,
      [ATTR_SERVER_ADDRESS]: parts[0],
      [ATTR_NETWORK_PEER_ADDRESS]: remote,
      [ATTR_NETWORK_PEER_PORT]: request.socket.remotePort,
      [ATTR_NETWORK_PROTOCOL_VERSION]: request.httpVersion,
      [ATTR_USER_AGENT_ORIGINAL]: headers['user-agent'],
    };
    attributes[ATTR_URL_PATH] = url;
    if (remote) attributes[ATTR_CLIENT_ADDRESS] = remote;
    if (port != null) attributes[ATTR_SERVER_PORT] = Number(port);
    if (method !== normalized) attributes[ATTR_HTTP_REQUEST_METHOD_ORIGINAL] = method;
    return Object.assign(attributes, options.hookAttributes);
  };
}
