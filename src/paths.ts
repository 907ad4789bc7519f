/**
 * Where the built files are, for code that spawns a built file or hands it to Node as a preload.
 * This file is built to the top of dist/, and the CommonJS preload is bundled into one file in
 * that same folder (scripts/bundle.mjs): so `__dirname` is dist/ in both, whereas a module in a
 * subfolder would see its own folder unbundled and dist/ once bundled.
 */
import * as path from 'node:path';

export const DIST_DIR = __dirname;
/** The short-lived process an exit that cannot wait runs to send the queued spans (src/worker/exit.ts). */
export const EXIT_SENDER = path.join(DIST_DIR, 'worker', 'exit-sender.js');
