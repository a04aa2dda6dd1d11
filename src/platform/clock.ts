// Clock over Moddable's "time" ticks and "timer" (virtual time in the host simulator).

import Time from "time";
import Timer from "timer";
import type { Clock } from "./ports";

export class ModdableClock implements Clock {
	ticks(): number {
		return Time.ticks;
	}

	now(): number {
		return Date.now();
	}

	setTimeout(callback: () => void, ms: number): unknown {
		return Timer.set(() => callback(), ms);
	}

	clearTimeout(handle: unknown): void {
		Timer.clear(handle as Timer);
	}
}
