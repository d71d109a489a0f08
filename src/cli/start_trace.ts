/**
 * Where the start's time goes: phases marked as they end, reported when the server is ready
 * if `WAGI_START_TRACE` is set (`deno task bench-cold-start` reads it). Times count from the
 * runtime's time origin, so the process's own start before any JavaScript is not included.
 * @module
 */

/** Phases of the start in order, each with the time (ms since the time origin) it ended. */
export class StartTrace {
  #marks: [string, number][] = [];

  /** Records that `phase` ended now. */
  mark(phase: string): void {
    this.#marks.push([phase, performance.now()]);
  }

  /** "phase 12.3 ms, phase 4.5 ms, …", each phase's own duration, and the total. */
  summary(): string {
    let last = 0;
    const parts = this.#marks.map(([phase, at]) => {
      const part = `${phase} ${(at - last).toFixed(1)} ms`;
      last = at;
      return part;
    });
    return `start: ${parts.join(", ")}; total ${last.toFixed(1)} ms since the time origin`;
  }
}

/** The trace of this process's start. */
export const startTrace = new StartTrace();
