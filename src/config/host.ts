import * as fs from 'node:fs';
import * as path from 'node:path';
import { isPlainObject } from './parsers';
import type { HostFacts, Pm2View } from './types';

interface AppPackage {
  file: string;
  name?: string;
  version?: string;
}

/**
 * Finds the application's package.json by walking up from the entry script's folder (or the cwd
 * when the entry is inside node_modules, as pm2's ProcessContainer is), never entering or
 * crossing a node_modules folder, so that a library's manifest is never taken for the app's.
 */
export function findAppPackage(host: HostFacts): AppPackage | undefined {
  const starts: string[] = [];
  const entry = host.pm2?.script ?? host.entryScript;
  if (entry && !isInsideNodeModules(entry)) starts.push(path.dirname(path.resolve(host.cwd, entry)));
  starts.push(host.pm2?.cwd ?? host.cwd);
  for (const start of starts) {
    if (isInsideNodeModules(start)) continue;
    let dir = path.resolve(start);
    for (;;) {
      const file = path.join(dir, 'package.json');
      const json = host.readJson(file);
      if (isPlainObject(json)) {
        return {
          file,
          name: typeof json.name === 'string' && json.name !== '' ? json.name : undefined,
          version: typeof json.version === 'string' && json.version !== '' ? json.version : undefined,
        };
      }
      const parent = path.dirname(dir);
      if (parent === dir || path.basename(parent) === 'node_modules') break;
      dir = parent;
    }
  }
  return undefined;
}

function isInsideNodeModules(p: string): boolean {
  return p.split(/[\\/]/).includes('node_modules');
}

export { defaultUser } from '../private-dir';

export function readTextFile(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** The real host, read when resolveConfig is called (never at import time). */
export function defaultHostFacts(pm2?: Pm2View): HostFacts {
  return {
    entryScript: process.argv[1],
    cwd: process.cwd(),
    readJson(file) {
      try {
        return JSON.parse(fs.readFileSync(file, 'utf8')) as unknown;
      } catch {
        return undefined;
      }
    },
    pm2: pm2 && { appName: pm2.appName, cwd: pm2.cwd, script: pm2.script },
    pm2EnvKeys: pm2?.envKeys,
  };
}
