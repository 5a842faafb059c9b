/**
 * Progress of a long CLI operation (device import, `crl publish`, backups),
 * drawn on stderr only when stderr is a terminal: scripts and pipes see
 * nothing, and stdout (results, secrets) never carries it. One line, redrawn
 * in place at most every `intervalMs`, cleared when the operation ends.
 */
export interface Progress {
  /** `done` of `total` (total unknown: a running count), with what is being worked on. */
  update(done: number, total: number | undefined, what?: string): void;
  /** Erases the line; the command then prints its result as usual. */
  end(): void;
}

/** What progress is drawn on: a terminal stream. */
export interface ProgressStream {
  isTTY?: boolean;
  columns?: number;
  write(text: string): unknown;
}

const none: Progress = { update: () => {}, end: () => {} };

/** A progress line on `stream` (stderr by default), or one that draws nothing when it is not a terminal. */
export function progress(label: string, stream: ProgressStream = process.stderr, intervalMs = 100, now: () => number = Date.now): Progress {
  if (!stream.isTTY) return none;
  let drawnAt = -Infinity;
  let drawn = false;
  // A pseudo-terminal may report 0 columns (unknown): then 80.
  const width = () => Math.max(20, (stream.columns || 80) - 1);
  return {
    update(done, total, what) {
      const t = now();
      // The last step is always drawn, so the final count is what stays on screen until end().
      if (t - drawnAt < intervalMs && done !== total) return;
      drawnAt = t;
      drawn = true;
      const count = total === undefined ? `${done}` : `${bar(done, total)} ${done}/${total}`;
      const text = `${label}: ${count}${what ? ` ${what}` : ''}`;
      stream.write(`\r\x1b[2K${text.length > width() ? text.slice(0, width()) : text}`);
    },
    end() {
      if (drawn) stream.write('\r\x1b[2K');
      drawn = false;
    },
  };
}

function bar(done: number, total: number): string {
  const cells = 24;
  const filled = total <= 0 ? cells : Math.min(cells, Math.round((done / total) * cells));
  return `[${'#'.repeat(filled)}${'.'.repeat(cells - filled)}]`;
}
