import type { Env } from '../config/types';

/** What forktrace needs to know about the pm2 app this process runs as. */
export interface Pm2Info {
  appName?: string;
  cwd?: string;
  /** The app's script; `process.argv[1]` is pm2's ProcessContainer in cluster mode. */
  script?: string;
  /**
   * `NODE_APP_INSTANCE` (or the variable the app's `instance_var` names): 0..instances-1, stable
   * across restarts and reloads.
   */
  instance?: number;
  pmId?: number;
  killTimeout?: number;
  shutdownWithMessage: boolean;
  /** pm2's own tracing (`trace: true`, `--trace`, `deep_monitoring`) is on for this app. */
  tracing: boolean;
  /** The environment to configure from: the real env overlaid with the ecosystem `env` pm2 has not applied yet. */
  env: Env;
  /** Keys of `env` that only pm2_env had. */
  envKeys: ReadonlySet<string>;
}

const MERGED_KEY = /^(OTEL_|FORKTRACE_)|^NODE_ENV$/;

function toInt(v: unknown): number | undefined {
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  return Number.isInteger(n) ? n : undefined;
}

/**
 * Reads pm2's view of this process. In pm2 cluster mode a `--require` preload runs before pm2's
 * ProcessContainer copies `pm2_env` into process.env; until then the ecosystem `env` exists only
 * as JSON in `process.env.pm2_env`. pm2_env wins over the inherited process.env for the keys it
 * has: the worker inherits the pm2 daemon's environment, which may hold stale values from when
 * the daemon was spawned, and ProcessContainer overwrites them with pm2_env's a moment later
 * (pm2 7 `lib/ProcessContainer.js`: `for (var k in pm2_env) process.env[k] = pm2_env[k]`).
 * Returns undefined outside pm2.
 */
export function readPm2(env: Env): Pm2Info | undefined {
  const raw = env.pm2_env;
  if (raw === undefined && env.pm_id === undefined) return undefined;
  let pm2: Record<string, unknown> = {};
  if (raw !== undefined) {
    try {
      const parsed: unknown = JSON.parse(raw);
      if (typeof parsed === 'object' && parsed !== null) pm2 = parsed as Record<string, unknown>;
    } catch {
      // pm2_env is pm2's own private format; if it cannot be read, fall back to the real env.
    }
  }
  const merged: Record<string, string | undefined> = { ...env };
  const envKeys = new Set<string>();
  // Top-level keys are what ProcessContainer copies; pm2 already merged `.env` into them.
  for (const [k, v] of Object.entries(pm2)) {
    // An ecosystem file may say `OTEL_BSP_SCHEDULE_DELAY: 300`: pm2 keeps the number in pm2_env
    // and only turns it into a string when it copies it into process.env.
    if (!MERGED_KEY.test(k) || !['string', 'number', 'boolean'].includes(typeof v)) continue;
    merged[k] = String(v);
    envKeys.add(k);
  }
  // pm2_env first here too: a daemon started from inside another pm2 app would hand its workers
  // that app's NODE_APP_INSTANCE and pm_id through the inherited environment.
  const instanceVar =
    typeof pm2.instance_var === 'string' && pm2.instance_var !== '' ? pm2.instance_var : 'NODE_APP_INSTANCE';
  return {
    appName: typeof pm2.name === 'string' ? pm2.name : env.name,
    cwd: typeof pm2.pm_cwd === 'string' ? pm2.pm_cwd : env.pm_cwd,
    script: typeof pm2.pm_exec_path === 'string' ? pm2.pm_exec_path : env.pm_exec_path,
    instance: toInt(pm2[instanceVar] ?? env[instanceVar]),
    pmId: toInt(pm2.pm_id ?? env.pm_id),
    killTimeout: toInt(pm2.kill_timeout),
    shutdownWithMessage: pm2.shutdown_with_message === true || pm2.shutdown_with_message === 'true',
    tracing: pm2.trace === true || pm2.trace === 'true',
    env: merged,
    envKeys,
  };
}

/**
 * Calls `fn` once pm2 has taken over this worker's stderr. Output printed by a preload goes only
 * to the daemon's `$PM2_HOME/pm2.log`: pm2's ProcessContainer replaces `process.stderr.write` to
 * feed `pm2 logs <app>` a few tens of ms later, after it opens the log files. Gives up silently
 * after `maxMillis`; never keeps the process alive.
 */
export function whenPm2TakesStderr(fn: () => void, maxMillis = 5000): void {
  const original = process.stderr.write;
  const started = Date.now();
  const timer = setInterval(() => {
    if (process.stderr.write !== original) {
      clearInterval(timer);
      fn();
    } else if (Date.now() - started > maxMillis) clearInterval(timer);
  }, 10);
  timer.unref();
}
