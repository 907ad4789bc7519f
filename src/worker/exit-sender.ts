/**
 * The sender an exit runs with `spawnSync` (src/worker/exit.ts): a process of its own, because an exit
 * cannot wait for the dying process's event loop. It reads from stdin a 4-byte big-endian length,
 * that many bytes of JSON (a {@link PostTarget}), then the request body; it makes one POST and
 * exits with {@link SENDER_EXIT_CODE}, printing only the outcome (an error code or an HTTP
 * status). The headers come through the pipe, never argv, the environment or a file.
 */
import { postOtlp, SENDER_EXIT_CODE, type PostTarget } from './otlp-post';

const chunks: Buffer[] = [];
process.stdin.on('data', (c: Buffer) => chunks.push(c));
process.stdin.on('end', () => {
  const input = Buffer.concat(chunks);
  let target: PostTarget;
  let body: Buffer;
  try {
    const length = input.readUInt32BE(0);
    target = JSON.parse(input.subarray(4, 4 + length).toString('utf8')) as PostTarget;
    body = input.subarray(4 + length);
  } catch {
    process.exit(SENDER_EXIT_CODE.failed);
  }
  void postOtlp(target, body).then((outcome) => {
    process.stdout.write(outcome.why, () => process.exit(SENDER_EXIT_CODE[outcome.result]));
  });
});
