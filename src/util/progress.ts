// A progress bar for long command-line jobs (dataset generation, training, evaluation).
//
// On a terminal it redraws one line in place (at most every 100 ms, so a tight loop does not
// spend its time writing to stderr). When stderr is a file or a pipe (CI logs, `2> log`),
// carriage-return redraws would pile up into one enormous line, so it prints a plain line every
// few seconds and a final line instead.

export interface ProgressStream {
  write(s: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  /** Where to draw; default process.stderr. */
  stream?: ProgressStream;
  /** Seconds between lines when the stream is not a terminal; default 5. */
  lineEverySeconds?: number;
  /** What is being counted, for the rate: "images" → "123 images/s". */
  unit?: string;
  /** Clock in milliseconds (tests inject one); default performance.now. */
  now?: () => number;
  /** Items already done before this run (a resumed job): counted in N/total, not in the rate. */
  initial?: number;
}

/** 75 → "1:15", 3725 → "1:02:05". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

function formatRate(r: number): string {
  return r >= 100 ? r.toFixed(0) : r >= 10 ? r.toFixed(1) : r.toFixed(2);
}

export class Progress {
  private done = 0;
  private readonly initial: number;
  private status = '';
  private readonly start: number;
  private lastDraw = -Infinity;
  private finished = false;
  private readonly stream: ProgressStream;
  private readonly tty: boolean;
  private readonly lineEveryMs: number;
  private readonly unit: string;
  private readonly now: () => number;

  constructor(
    private readonly label: string,
    private readonly total: number,
    opts: ProgressOptions = {},
  ) {
    this.stream = opts.stream ?? process.stderr;
    this.tty = this.stream.isTTY === true;
    this.lineEveryMs = 1000 * (opts.lineEverySeconds ?? 5);
    this.unit = opts.unit ?? 'items';
    this.now = opts.now ?? (() => performance.now());
    this.start = this.now();
    this.initial = opts.initial ?? 0;
    this.done = this.initial;
    // A non-terminal log gets its first line after the interval, not an immediate "0/N".
    if (!this.tty) this.lastDraw = this.start;
  }

  /** Extra text shown after the counts (e.g. the current loss and learning rate). */
  setStatus(text: string): void {
    this.status = text;
  }

  /** Count `n` more items done. */
  tick(n = 1): void {
    this.update(this.done + n);
  }

  /** Set the number of items done. */
  update(done: number): void {
    this.done = Math.min(done, this.total);
    const t = this.now();
    if (t - this.lastDraw >= (this.tty ? 100 : this.lineEveryMs)) {
      this.lastDraw = t;
      this.draw(t);
    }
  }

  /** Print the final line (idempotent). */
  finish(): void {
    if (this.finished) return;
    this.finished = true;
    const elapsed = (this.now() - this.start) / 1000;
    const rate = elapsed > 0 ? (this.done - this.initial) / elapsed : 0;
    const line = `${this.label} ${this.done}/${this.total} in ${formatDuration(elapsed)} (${formatRate(rate)} ${this.unit}/s)`;
    this.stream.write(this.tty ? `\r\x1b[K${line}\n` : `${line}\n`);
  }

  /** End without a final line (the job failed; its error says why): just leave the bar's line. */
  stop(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.tty && this.lastDraw > -Infinity) this.stream.write('\n');
  }

  private draw(t: number): void {
    const elapsed = (t - this.start) / 1000;
    const rate = elapsed > 0 ? (this.done - this.initial) / elapsed : 0;
    const eta = rate > 0 ? (this.total - this.done) / rate : NaN;
    const pct = this.total > 0 ? Math.floor((100 * this.done) / this.total) : 100;
    const stats = `${this.done}/${this.total} ${String(pct).padStart(3)}% ${formatRate(rate)} ${this.unit}/s ETA ${formatDuration(eta)}${this.status ? ` | ${this.status}` : ''}`;
    if (!this.tty) {
      this.stream.write(`${this.label} ${stats}\n`);
      return;
    }
    const columns = this.stream.columns ?? 80;
    const width = Math.max(10, Math.min(40, columns - this.label.length - stats.length - 5));
    const filled = this.total > 0 ? Math.round((width * this.done) / this.total) : width;
    const bar = '█'.repeat(filled) + '░'.repeat(width - filled);
    this.stream.write(`\r\x1b[K${this.label} ${bar} ${stats}`);
  }
}
