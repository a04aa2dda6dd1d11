/*
	What a client holds towards one server, bootstrap or registration: the CoAP request in flight and the one timer
	beside it (its time-out, the wait before a retry, the next update). Halting stops both.
*/

import type { Clock } from "../platform/ports";

/** The wait before attempt `failures` + 1: retryBaseMs, doubling with each failure, at most retryMaxMs. */
export function doublingDelay(options: { retryBaseMs: number; retryMaxMs: number }, failures: number): number {
	return Math.min(options.retryMaxMs, options.retryBaseMs * 2 ** (failures - 1));
}

export class ServerExchange {
	#clock: Clock;
	#timer: unknown;
	#cancel: (() => void) | undefined;

	constructor(clock: Clock) {
		this.#clock = clock;
	}

	/** A request was sent; `cancel` drops it. */
	sent(cancel: () => void): void {
		this.#cancel = cancel;
	}

	/** Its answer (or its failure) came: nothing left to cancel. */
	answered(): void {
		this.#cancel = undefined;
	}

	/** Runs `then` after `ms`, in place of the timer armed before. */
	after(ms: number, then: () => void): void {
		this.#clock.clearTimeout(this.#timer);
		this.#timer = this.#clock.setTimeout(then, ms);
	}

	halt(): void {
		this.#clock.clearTimeout(this.#timer);
		this.#timer = undefined;
		this.#cancel?.();
		this.#cancel = undefined;
	}
}
