// Real pm2 for the tests: a daemon of our own in a temporary PM2_HOME, the CLI run with a timeout,
// and teardown that always kills that daemon (and only it).
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as http from 'node:http';
import { ROOT, cleanEnv } from './helpers.mjs';

export const PM2_BIN = path.join(ROOT, 'node_modules', 'pm2', 'bin', 'pm2');

/** pm2.log timestamps with milliseconds (the daemon reads this when it starts), to time stops. */
const LOG_DATE_FORMAT = 'YYYY-MM-DDTHH:mm:ss.SSS';

/**
 * Starts a pm2 daemon in a fresh temporary PM2_HOME. `$PM2_HOME/touch` and the env below keep
 * pm2 off the network (no version check). Every CLI call gets `env` on top of a clean env (no
 * OTEL_/FORKTRACE_/PM2_ variables of the developer's); pm2 copies that env into the apps it
 * starts, ecosystem `env` winning.
 */
export async function startPm2() {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'forktrace-pm2-'));
  fs.writeFileSync(path.join(home, 'touch'), '');
  const baseEnv = {
    PM2_HOME: home,
    PM2_DISABLE_VERSION_CHECK: 'true',
    PM2_DISCRETE_MODE: 'true',
    PM2_LOG_DATE_FORMAT: LOG_DATE_FORMAT,
  };
  const logFile = path.join(home, 'pm2.log');

  /** Runs `pm2 ...args`; rejects with its output on a non-zero exit or after `timeoutMs`. */
  function run(args, { env = {}, cwd = os.tmpdir(), timeoutMs = 20_000 } = {}) {
    return new Promise((resolve, reject) => {
      execFile(
        process.execPath,
        [PM2_BIN, ...args],
        { cwd, env: cleanEnv({ ...env, ...baseEnv }), timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 << 20 },
        (err, stdout, stderr) => {
          if (err) reject(new Error(`pm2 ${args.join(' ')} failed (${err.killed ? `no answer in ${timeoutMs} ms` : err.code}): ${stdout}\n${stderr}`));
          else resolve(stdout);
        },
      );
    });
  }

  // The first command spawns the daemon: with nothing but the base env, so that no test's
  // variables reach the apps through the daemon's own environment.
  await run(['ping']);

  const pm2 = {
    home,
    logFile,
    run,
    /** `pm2 jlist`, parsed: [{ name, pid, pm_id, pm2_env }]. */
    async jlist() {
      const out = await run(['jlist']);
      return JSON.parse(out.slice(out.indexOf('[')));
    },
    /** pm2.log as it is now. */
    log() {
      return fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '';
    },
    /** Kills the daemon and its apps, then removes PM2_HOME. Safe to call twice. */
    async kill() {
      if (!fs.existsSync(home)) return;
      let daemonPid;
      try {
        daemonPid = Number(fs.readFileSync(path.join(home, 'pm2.pid'), 'utf8'));
      } catch {
        // no daemon was ever started
      }
      const apps = await pm2.jlist().catch(() => []);
      await run(['kill'], { timeoutMs: 15_000 }).catch(() => undefined);
      // If `pm2 kill` failed, end what this PM2_HOME started, by pid.
      for (const pid of [...apps.map((a) => a.pid), daemonPid]) {
        if (!pid) continue;
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      fs.rmSync(home, { recursive: true, force: true });
    },
  };
  return pm2;
}

/** Milliseconds since the epoch of a pm2.log timestamp (local time, LOG_DATE_FORMAT). */
function logTime(stamp) {
  return new Date(stamp).getTime();
}

/**
 * How long each worker of `app` took to stop, from pm2.log text: from pm2's "Stopping app:<app>
 * id:<id>" (just before it sends SIGINT) to "App [<app>:<id>] exited". `log` should hold only the
 * lines of one stop or reload. Returns { [id]: ms }.
 */
export function stopTimes(log, app) {
  const started = {};
  const times = {};
  const esc = app.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const stopping = new RegExp(`^(\\S+): PM2 log: Stopping app:${esc} id:(\\S+)$`);
  const exited = new RegExp(`^(\\S+): PM2 log: App \\[${esc}:(\\S+)\\] exited`);
  for (const line of log.split('\n')) {
    let m = stopping.exec(line);
    if (m) started[m[2]] = logTime(m[1]);
    m = exited.exec(line);
    if (m && started[m[2]] !== undefined) times[m[2]] = logTime(m[1]) - started[m[2]];
  }
  return times;
}

/**
 * Sends `total` GET requests to `url` with `concurrency` in flight over keep-alive connections
 * (spread over the workers by the cluster's round robin). Resolves { ok, failed, byPid } where
 * `byPid` counts the 200 answers per worker pid (the example app puts its pid in /hello's body).
 */
export async function burst(url, { total, concurrency }) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const byPid = {};
  let ok = 0;
  let failed = 0;
  let next = 0;
  const one = () =>
    new Promise((resolve) => {
      const req = http.get(url, { agent }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (body += c));
        res.on('end', () => {
          if (res.statusCode === 200) {
            ok++;
            const { pid } = JSON.parse(body);
            byPid[pid] = (byPid[pid] ?? 0) + 1;
          } else failed++;
          resolve();
        });
      });
      req.setTimeout(10_000, () => req.destroy(new Error('no answer in 10 s')));
      req.on('error', () => {
        failed++;
        resolve();
      });
    });
  const lanes = Array.from({ length: concurrency }, async () => {
    while (next < total) {
      next++;
      await one();
    }
  });
  await Promise.all(lanes);
  agent.destroy();
  return { ok, failed, byPid };
}

/**
 * Polls `url` (the example app's /hello) until `count` distinct worker pids have answered.
 * Returns those pids.
 */
export async function waitForWorkers(url, count, timeoutMs = 20_000) {
  const seen = new Set();
  const until = Date.now() + timeoutMs;
  while (seen.size < count) {
    if (Date.now() > until) throw new Error(`only ${seen.size} of ${count} workers answered ${url} within ${timeoutMs} ms`);
    const pid = await new Promise((resolve) => {
      const req = http.get(url, { agent: false }, (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => {
          try {
            resolve(JSON.parse(body).pid);
          } catch {
            resolve(undefined);
          }
        });
      });
      req.setTimeout(2000, () => req.destroy());
      req.on('error', () => resolve(undefined));
    });
    if (pid) seen.add(pid);
    else await new Promise((r) => setTimeout(r, 100));
  }
  return [...seen];
}
