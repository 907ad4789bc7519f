/**
 * Folders and files of this user's only, in places anyone may write first (the temporary folder):
 * the spool, the Prometheus state and the preload's code cache. It imports nothing but Node's own
 * modules, since the preload's first file loads it before anything else.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';

/** Why a folder cannot be used, for one warning; undefined when it can. */
export type DirProblem = string | undefined;

/** An error's code or name, never its message: a message may quote a URL with credentials. */
export function errorText(e: unknown): string {
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code === 'string') return code;
  return e instanceof Error ? e.name : 'error';
}

/**
 * Writes `data` to `tmp`, created here (never through a link someone left in its place, mode
 * 0600), then renames it to `file`: readers only ever see whole files.
 */
export function writePrivate(tmp: string, file: string, data: Uint8Array): void {
  const fd = fs.openSync(
    tmp,
    fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | (fs.constants.O_NOFOLLOW ?? 0),
    0o600,
  );
  try {
    fs.writeSync(fd, data);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

/** This user's id; undefined where Node has none (Windows). */
export const uid = (): number | undefined => process.getuid?.();

/** Why `st` (from lstat) is not a folder this user may keep its files in; undefined if it is. */
export function folderProblem(dir: string, st: fs.Stats): DirProblem {
  if (st.isSymbolicLink()) return `${dir} is a symlink`;
  if (!st.isDirectory()) return `${dir} is not a folder`;
  const me = uid();
  if (me !== undefined && st.uid !== me) return `${dir} belongs to another user (uid ${st.uid})`;
  return undefined;
}

/**
 * Makes `dir` (mode 0700) if needed and checks that it is a real folder of this user, not a
 * symlink nor another user's: the default folders live in the shared temporary folder. A folder
 * of forktrace's own (`ours`) is made private again if its mode was opened; a folder the user
 * chose keeps the mode they gave it.
 */
export function ownDir(dir: string, ours: boolean): DirProblem {
  try {
    fs.mkdirSync(dir, { mode: 0o700, recursive: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') return `cannot create ${dir} (${errorText(e)})`;
  }
  let st: fs.Stats;
  try {
    st = fs.lstatSync(dir);
  } catch (e) {
    return `cannot read ${dir} (${errorText(e)})`;
  }
  const problem = folderProblem(dir, st);
  if (problem !== undefined) return problem;
  if (ours && uid() !== undefined && (st.mode & 0o077) !== 0) {
    try {
      fs.chmodSync(dir, 0o700);
    } catch (e) {
      return `cannot make ${dir} private (${errorText(e)})`;
    }
  }
  return undefined;
}

/** The uid on POSIX, else the user name, made safe for a file name. */
export function defaultUser(): string {
  const id = uid();
  if (id !== undefined) return String(id);
  try {
    return os.userInfo().username.replace(/[^A-Za-z0-9_.-]/g, '_');
  } catch {
    return 'user';
  }
}

/** Who besides the owner may write to a folder, or undefined; no modes to read without uids (Windows). */
export function writableBy(st: fs.Stats): string | undefined {
  if (uid() === undefined) return undefined;
  const who = [st.mode & 0o020 ? 'group' : '', st.mode & 0o002 ? 'others' : ''].filter((w) => w !== '');
  return who.length === 0 ? undefined : who.join(' and ');
}
