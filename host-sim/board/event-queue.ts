// Events a board's sockets have for the device, in arrival order, with TCP-like flow control: a socket is
// paused while more than `window` payload bytes wait, and resumed once the device has taken half of them.

import type { NetworkSignal } from "./signal";

export interface QueuedEvent<E> {
	event: E;
	data: Uint8Array | undefined;
}

export class EventQueue<E extends { id: number }> {
	#entries: QueuedEvent<E>[] = [];
	#signal: NetworkSignal;
	#window: number;
	#resume: () => void;

	constructor(signal: NetworkSignal, window: number, resume: () => void) {
		this.#signal = signal;
		this.#window = window;
		this.#resume = resume;
	}

	push(event: E, data?: Uint8Array): void {
		this.#entries.push({ event, data });
		this.#signal.notify();
	}

	/** Whether a socket that just queued data should pause. */
	get full(): boolean {
		return this.pendingBytes() > this.#window;
	}

	pendingBytes(): number {
		let total = 0;
		for (const entry of this.#entries) total += entry.data?.length ?? 0;
		return total;
	}

	take(): QueuedEvent<E> | undefined {
		const entry = this.#entries.shift();
		if (entry && this.pendingBytes() < this.#window / 2) this.#resume();
		return entry;
	}

	/** Forgets what a closed socket had queued. */
	drop(id: number): void {
		this.#entries = this.#entries.filter((entry) => entry.event.id !== id);
	}

	clear(): void {
		this.#entries = [];
	}

	/** What waits, in order; take() removes from the front. */
	get entries(): readonly QueuedEvent<E>[] {
		return this.#entries;
	}

	get length(): number {
		return this.#entries.length;
	}
}
