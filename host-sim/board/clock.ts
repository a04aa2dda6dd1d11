// The board's virtual clock. Time stands still while the device computes; it jumps to the next timer when
// the board waits for nothing else, and runs at real speed while the board waits for its sockets.

export interface DueTimer {
	id: number;
	due: number;
	interval: number;
	repeat: boolean;
}

export class VirtualClock {
	/** Milliseconds since power-on. */
	now = 0;
	readonly epochAtPowerOn: number;
	#timers = new Map<number, DueTimer>();

	constructor(epochAtPowerOn: number) {
		this.epochAtPowerOn = epochAtPowerOn;
	}

	get wallTime(): number {
		return this.epochAtPowerOn + this.now;
	}

	set(id: number, interval: number, repeat: number): void {
		this.#timers.set(id, { id, due: this.now + Math.max(0, interval), interval: repeat, repeat: repeat > 0 });
	}

	clear(id: number): void {
		this.#timers.delete(id);
	}

	get hasTimers(): boolean {
		return this.#timers.size > 0;
	}

	/** Milliseconds until the earliest timer, or undefined with none. */
	untilNext(): number | undefined {
		let earliest: number | undefined;
		for (const timer of this.#timers.values())
			if (earliest === undefined || timer.due < earliest) earliest = timer.due;
		return earliest === undefined ? undefined : Math.max(0, earliest - this.now);
	}

	/** Removes (or re-arms) the earliest due timer and returns its id. */
	takeDue(): number | undefined {
		let found: DueTimer | undefined;
		for (const timer of this.#timers.values())
			if (timer.due <= this.now && (!found || timer.due < found.due)) found = timer;
		if (!found) return undefined;
		if (found.repeat) found.due = this.now + Math.max(1, found.interval);
		else this.#timers.delete(found.id);
		return found.id;
	}

	advance(ms: number): void {
		this.now += Math.max(0, ms);
	}
}
