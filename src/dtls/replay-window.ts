// The anti-replay window (RFC 6347 §4.1.2.6): the highest 48-bit sequence number accepted so far and which
// of the 64 before it were seen, as a ring indexed by sequence number modulo 64.

const size = 64;

export class ReplayWindow {
	#highest = -1;
	readonly #seen = new Uint8Array(size);

	reset(): void {
		this.#highest = -1;
		this.#seen.fill(0);
	}

	/** Whether a record with this sequence number may be new (checked before its MAC, marked after). */
	fresh(sequence: number): boolean {
		if (sequence > this.#highest) return true;
		if (sequence <= this.#highest - size) return false;
		return this.#seen[sequence % size] === 0;
	}

	mark(sequence: number): void {
		if (sequence > this.#highest) {
			// The slots the window slides over now stand for new numbers: none of them seen yet.
			for (let s = Math.max(this.#highest + 1, sequence - size + 1); s < sequence; s++) this.#seen[s % size] = 0;
			this.#highest = sequence;
		}
		this.#seen[sequence % size] = 1;
	}
}
