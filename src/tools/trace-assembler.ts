import type { DecodedSpan } from './receiver';

/**
 * Groups spans by trace id and hands a trace over once no span of it arrived for `settleMs`:
 * the spans of one request come from several processes (a two-service hop) and several export
 * batches, each on its own schedule.
 */
export class TraceAssembler {
  private readonly pending = new Map<string, { spans: DecodedSpan[]; timer: NodeJS.Timeout }>();
  /** Trace ids already printed, so that a late span says "continued"; bounded. */
  private readonly printed = new Set<string>();

  constructor(
    private readonly settleMs: number,
    private readonly emit: (spans: DecodedSpan[], continued: boolean) => void,
  ) {}

  add(spans: readonly DecodedSpan[]): void {
    for (const s of spans) {
      let entry = this.pending.get(s.traceId);
      if (entry) clearTimeout(entry.timer);
      else entry = { spans: [], timer: undefined as unknown as NodeJS.Timeout };
      entry.spans.push(s);
      const id = s.traceId;
      entry.timer = setTimeout(() => this.release(id), this.settleMs);
      this.pending.set(id, entry);
    }
  }

  /** Emits every pending trace now (on exit). */
  flush(): void {
    for (const id of [...this.pending.keys()]) this.release(id);
  }

  private release(id: string): void {
    const entry = this.pending.get(id);
    if (!entry) return;
    clearTimeout(entry.timer);
    this.pending.delete(id);
    const continued = this.printed.has(id);
    this.printed.add(id);
    if (this.printed.size > 10_000) this.printed.delete(this.printed.values().next().value as string);
    this.emit(entry.spans, continued);
  }
}
