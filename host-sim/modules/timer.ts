// The Moddable "timer" module on the board's virtual clock.
import { call, listen, unlisten } from "./host";

export default class Timer {
	#id: number;
	#repeat: boolean;

	private constructor(callback: (timer: Timer) => void, interval: number, repeat: number) {
		this.#repeat = repeat > 0;
		this.#id = call("timer.set", interval, repeat);
		listen(this.#id, () => {
			if (!this.#repeat) unlisten(this.#id);
			callback(this);
		});
	}

	static set(callback: (timer: Timer) => void, interval = 0, repeat = 0): Timer {
		return new Timer(callback, interval, repeat);
	}

	static repeat(callback: (timer: Timer) => void, interval: number): Timer {
		return new Timer(callback, interval, interval);
	}

	static clear(timer: Timer | undefined): void {
		if (!timer) return;
		unlisten(timer.#id);
		call("timer.clear", timer.#id);
	}

	static delay(ms: number): void {
		call("timer.delay", ms);
	}
}
