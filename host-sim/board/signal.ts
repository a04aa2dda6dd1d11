// Wakes the board's run loop when any of its sockets queues an event for the device. One per board, shared
// by the HTTP and MQTT networks, so a single wait covers both.

export class NetworkSignal {
	#wake: (() => void) | undefined;

	notify(): void {
		this.#wake?.();
	}

	/** Resolves when an event arrives or after `ms` real milliseconds. */
	wait(ms: number): Promise<void> {
		return new Promise((resolve) => {
			const done = () => {
				clearTimeout(timer);
				this.#wake = undefined;
				resolve();
			};
			const timer = setTimeout(done, ms);
			this.#wake = done;
		});
	}
}
