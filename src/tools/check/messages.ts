/**
 * What `forktrace check` says beyond the worker's own lines (src/worker/messages.ts, whose
 * configuration warnings check reports too): its problems, notes and export verdicts. Tests
 * assert these texts word for word; code decides on a finding's `code`, never on its text.
 */
export const checkMessages = {
  /** A key of the ecosystem `env` the preload does not read; the value is not shown (it may be a key). */
  pm2EnvNotRead: (key: string, kind: string) =>
    `${key} in the app's env is ${kind}, which forktrace's preload does not read from pm2_env: ` +
    `the worker starts without it. Write the value as a string (in quotes).`,
  killTimeoutShort: (killMs: number, isDefault: boolean, flushMs: number, neededMs: number) =>
    `pm2 sends SIGKILL ${killMs} ms after SIGINT (${isDefault ? "pm2's default kill_timeout" : "the app's kill_timeout"}), ` +
    `but forktrace may flush for up to ${flushMs} ms on stop (FORKTRACE_SHUTDOWN_TIMEOUT_MS): the last spans of a stop or reload can be lost. ` +
    `Set kill_timeout: ${neededMs} or more in the app (the flush deadline plus ${neededMs - flushMs} ms for the app to close), or lower FORKTRACE_SHUTDOWN_TIMEOUT_MS.`,
  preloadRelative: (flag: string, specifier: string, cluster: boolean) =>
    cluster
      ? `node_args ${flag} ${specifier} is resolved from pm2's daemon's cwd, not the app's: in cluster mode the worker ` +
        `fails to start and pm2 restarts it in a loop. Give an absolute path: ` +
        (flag === '--import'
          ? `node_args: ['--import', pathToFileURL(path.join(path.dirname(require.resolve('forktrace/package.json')), 'dist', 'register.mjs')).href]`
          : `node_args: ['--require', require.resolve('forktrace/register')]`) +
        ` (README, "pm2").`
      : `node_args ${flag} ${specifier} is resolved from the app's cwd in fork mode, but from pm2's daemon's cwd in cluster mode: ` +
        `give an absolute path (require.resolve('forktrace/register')) so the app also starts when clustered.`,
  preloadMissing: (flag: string, specifier: string) =>
    `node_args ${flag} ${specifier}: no such file on this machine, so the worker fails to start; run npm run build, or fix the path.`,
  envBlockNotMerged: (names: string[], envName: string) =>
    `${names.join(', ')} ${names.length === 1 ? 'is' : 'are'} set only in env_${envName}, which pm2 applies only with --env ${envName}: ` +
    `as checked (no --env), the worker runs without ${names.length === 1 ? 'it' : 'them'}. ` +
    `Start with pm2 start <file> --env ${envName} (and check with --env ${envName}), or move ${names.length === 1 ? 'it' : 'them'} to env.`,
  disabled: 'OTEL_SDK_DISABLED=true: tracing is off, nothing will be exported.',
  /** `where`: '' for the environment, else where the name was written. */
  misspeltVariable: (name: string, where: string, nearest: string) =>
    `${name}${where} is not a variable forktrace reads; did you mean ${nearest}? As written, it is ignored and that setting keeps its value.`,
  unknownForktraceVariable: (name: string, where: string) =>
    `${name}${where} is not a forktrace variable, so it is ignored; the README's configuration table lists them all.`,
  otherOtelVariable: (name: string, where: string) =>
    `${name}${where} is not read by forktrace, which sends traces and metrics only (another tool may read it).`,
  inPm2Env: " (in the pm2 app's env)",
  noOtlpExporter: (exporters: string[]) =>
    `OTEL_TRACES_EXPORTER=${exporters.join(',')}: no OTLP exporter, spans never reach the endpoint.`,
  exportFailed: (url: string, why: string) => `export to ${url} failed: ${why}`,
  libraryUnsupported: (name: string, version: string, range: string) =>
    `${name} ${version} is installed but the instrumentation supports ${range}: its spans will be missing.`,
  instrumentationOff: (name: string) => `${name} is installed but its instrumentation is turned off.`,
  notSent: {
    noSend: 'not sent (--no-send)',
    disabled: 'not sent (tracing is disabled)',
    noOtlp: 'not sent (no OTLP exporter)',
    plainHttp: 'not sent: it would carry the credentials unencrypted (fix the endpoint, or pass --allow-plain-http)',
  },
  accepted: (status: number) => `HTTP ${status}: the endpoint accepted an OTLP/HTTP protobuf export`,
  notOtlp: (status: number, contentType: string) =>
    `HTTP ${status}, but the answer is ${contentType}, not OTLP: make sure this URL is an OTLP endpoint and not a web page`,
  htmlPage: (status: number, title: string | undefined) =>
    `HTTP ${status}, but the answer is an HTML page${title === undefined ? '' : ` ("${title}")`}, not OTLP: ` +
    `this URL serves a web page (a sign-in page, a proxy or a dashboard), and every span sent there is lost. ` +
    `Use the OTLP/HTTP endpoint your backend documents (a Collector listens on port 4318)`,
  pageTitle: (title: string) => `; the page's title: "${title}"`,
  plainHttpToTlsPort: (host: string) =>
    `HTTP 400: ${host} speaks TLS and got plain http ("The plain HTTP request was sent to HTTPS port"): use https:// in the endpoint`,
  redirect: (status: number, target: string | undefined, dropped: boolean) =>
    target === undefined
      ? `HTTP ${status}: the endpoint redirects, without a usable Location; OTLP exporters do not follow redirects, so every export fails`
      : `HTTP ${status}: the endpoint redirects to ${target}${dropped ? ' (query not shown)' : ''}; ` +
        `OTLP exporters do not follow redirects, so every export fails: ` +
        `set OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=${target}${dropped ? ' (with its query)' : ''}`,
  endpointSaid: (text: string) => `; the endpoint said: ${text}`,
  grpcStatus: ' Port 4317 is the OTLP gRPC port; use 4318.',
  grpcHint: 'is this the gRPC port 4317? OTLP/HTTP is 4318',
  tryPort4318: ' (try port 4318)',
  timeout: (ms: number, host: string) =>
    `no answer within ${ms} ms from ${host} (check --timeout, OTEL_EXPORTER_OTLP_TRACES_TIMEOUT, or a firewall dropping packets)`,
  tlsFailed: (why: string) =>
    `TLS failed (${why}): check https vs http, the certificate and the CA (NODE_EXTRA_CA_CERTS)`,
  certOtherHost: (code: string, host: string, names: string[], untrusted: boolean) =>
    `TLS failed (${code}): the endpoint's certificate was issued for ${names.join(', ')}, not for ${host}` +
    (untrusted ? ', and its CA is not trusted here either' : '') +
    `: put a name the certificate holds in the endpoint, or give the endpoint a certificate for ${host}` +
    (untrusted ? `; if a private CA signed it, set OTEL_EXPORTER_OTLP_CERTIFICATE to the CA's PEM file` : ''),
  headerPercentDecoded: (name: string, variable: string) =>
    `the value of header ${name} in ${variable} holds percent-escapes (%XX), which are decoded before sending, as the OTLP spec says: ` +
    `right for an encoded value, but if the key itself contains '%' (as your vendor wrote it), write each '%' as %25.`,
  headerEncodedTwice: (name: string, variable: string) =>
    `the value of header ${name} in ${variable} is sent with %XX escapes still in it (written as %25XX): ` +
    `right if the key itself contains them, but if it was percent-encoded twice, encode it once.`,
  abortTimeout: (ms: number) => `no answer within ${ms} ms`,
} as const;
