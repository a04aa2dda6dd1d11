// A Clock port for unit tests: wall time from a start instant, timers run in order by advance().

import type { Clock } from "../../src/platform/ports";

export class FakeClock implements Clock {
	wall: number;
	#ticks = 0;
	#timers = new Map<number, { due: number; callback: () => void }>();
	#next = 1;
	constructor(wall: number) { this.wall = wall; }
	ticks() { return this.#ticks; }
	now() { return this.wall + this.#ticks; }
	setTimeout(callback: () => void, ms: number) { const id = this.#next++; this.#timers.set(id, { due: this.#ticks + ms, callback }); return id; }
	clearTimeout(handle: unknown) { this.#timers.delete(handle as number); }
	/** Runs every timer due within `ms`, in order. */
	advance(ms: number) {
		const end = this.#ticks + ms;
		for (;;) {
			let found: [number, { due: number; callback: () => void }] | undefined;
			for (const entry of this.#timers) if (entry[1].due <= end && (!found || entry[1].due < found[1].due)) found = entry;
			if (!found) break;
			this.#timers.delete(found[0]);
			this.#ticks = found[1].due;
			found[1].callback();
		}
		this.#ticks = end;
	}
}
