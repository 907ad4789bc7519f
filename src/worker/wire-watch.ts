/**
 * What the OTLP exporters (spans: exporter.ts, metrics: metrics.ts) see of their own requests.
 * Both are upstream's export delegate (otlp-exporter-base), which neither bounds an attempt that
 * receives a byte now and then, nor keeps the status of a retryable answer, nor lets anyone end
 * its requests. So each exporter watches the requests its own agent makes through Node's HTTP
 * diagnostics channels, and can end them when a stop's deadline has passed.
 */
import * as diagnosticsChannel from 'node:diagnostics_channel';
import type * as http from 'node:http';
import type { httpAgentFactoryFromOptions } from '@opentelemetry/otlp-exporter-base/node-http';

/** An export whose last attempt got no answer within the export timeout. */
export class ExportTimeoutError extends Error {
  readonly code = 'ETIMEDOUT';
  constructor(readonly timeoutMillis: number) {
    super(`no answer within ${timeoutMillis} ms`);
    this.name = 'ExportTimeoutError';
  }
}

/**
 * An export attempt given up at a stop deadline (FORKTRACE_SHUTDOWN_TIMEOUT_MS). Its code is none
 * of the network codes upstream retries, so the export fails at once instead of retrying.
 */
export class StopDeadlineError extends Error {
  readonly code = STOP_DEADLINE_CODE;
  constructor() {
    super('given up at the stop deadline');
    this.name = 'StopDeadlineError';
  }
}

const STOP_DEADLINE_CODE = 'FORKTRACE_STOP_DEADLINE';

/**
 * Whether `error` is a {@link StopDeadlineError}, by its code: the metrics exporter is loaded
 * outside the preload bundle (scripts/bundle.mjs), with a class of its own.
 */
export function isStopDeadline(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === STOP_DEADLINE_CODE;
}

/** An exporter that can give up on the requests it has in flight. */
export interface Abandonable {
  /** Ends every export request in flight, as failed and not retried; returns how many. */
  abandonInFlight(): number;
}

type AgentFactory = ReturnType<typeof httpAgentFactoryFromOptions>;

// Node publishes every client request and response on these (node:diagnostics_channel, "HTTP"
// built-in channels). Each exporter watches the ones made through its own agent: it keeps the last
// status, because upstream's retrying transport drops the status of a retryable answer, and it
// bounds each attempt, because upstream's timeout is an idle timeout (`req.setTimeout`) that an
// endpoint sending one byte a second never trips.
const REQUEST_CHANNEL = 'http.client.request.start';
const RESPONSE_CHANNEL = 'http.client.response.finish';

/** The requests one exporter's own agent makes: used to explain failures and to end them at a stop. */
export class WireWatch implements Abandonable {
  /** The last HTTP status received, and its `Retry-After` header as sent. */
  lastStatus: number | undefined;
  lastRetryAfter: string | undefined;
  /** Attempts in flight, so that a stop can end them instead of waiting for their timeout. */
  private readonly open = new Set<http.ClientRequest>();
  private agent: http.Agent | undefined;
  private readonly onRequest: (message: unknown) => void;
  private readonly onResponse: (message: unknown) => void;

  /** Watches from now on; each attempt is ended after `timeoutMillis` (the export timeout). */
  constructor(timeoutMillis: number) {
    this.onRequest = (message) => {
      const request = (message as { request?: http.ClientRequest }).request;
      if (!this.isOurs(request)) return;
      const timer = setTimeout(() => request.destroy(new ExportTimeoutError(timeoutMillis)), timeoutMillis);
      timer.unref();
      this.open.add(request);
      request.once('close', () => {
        clearTimeout(timer);
        this.open.delete(request);
      });
    };
    this.onResponse = (message) => {
      const { request, response } = message as { request?: http.ClientRequest; response?: http.IncomingMessage };
      if (!this.isOurs(request) || response === undefined) return;
      this.lastStatus = response.statusCode;
      const retryAfter = response.headers['retry-after'];
      this.lastRetryAfter = typeof retryAfter === 'string' ? retryAfter : undefined;
    };
    diagnosticsChannel.subscribe(REQUEST_CHANNEL, this.onRequest);
    diagnosticsChannel.subscribe(RESPONSE_CHANNEL, this.onResponse);
  }

  /** `make`, noting the agent it makes as the one whose requests are watched. */
  agentFactory(make: AgentFactory): AgentFactory {
    return async (protocol) => {
      const agent = await make(protocol);
      this.agent = agent;
      return agent;
    };
  }

  /**
   * Ends the attempts in flight. A stop whose deadline has passed calls this: an export to a
   * blackholed endpoint would otherwise hold the process open after the app's own stop handler
   * finished, through its socket, upstream's retry timer and the caller's export timer, until
   * the export timeout, and pm2 would SIGKILL it.
   */
  abandonInFlight(): number {
    const open = [...this.open];
    for (const request of open) request.destroy(new StopDeadlineError());
    return open.length;
  }

  /** Stops watching. */
  close(): void {
    diagnosticsChannel.unsubscribe(REQUEST_CHANNEL, this.onRequest);
    diagnosticsChannel.unsubscribe(RESPONSE_CHANNEL, this.onResponse);
  }

  private isOurs(request: http.ClientRequest | undefined): request is http.ClientRequest {
    return this.agent !== undefined && request !== undefined && (request as { agent?: unknown }).agent === this.agent;
  }
}
