// The board's power supply during one power-on. Every persistent write (flash erase/write, preference
// erase/write) asks it first, so a test can cut power at an exact operation and get the same partial
// effect on every run.

export class PowerCutError extends Error {
	constructor() {
		super("power cut");
		this.name = "PowerCutError";
	}
}

export type OpOutcome = "full" | "torn";

export interface PowerOptions {
	/** 1-based index of the persistent op during which power is lost; omitted = never. */
	cutAfterOps?: number;
	/** Seeds tearFraction(), so how much of the torn op lands is reproducible. */
	seed?: number;
}

export class PowerSupply {
	readonly cutAfterOps: number | undefined;
	readonly seed: number;
	/** Persistent ops begun during this power-on (the torn one included). */
	ops = 0;
	off = false;
	cutAt: { op: number; kind: string } | undefined = undefined;

	constructor(options: PowerOptions = {}) {
		this.cutAfterOps = options.cutAfterOps;
		this.seed = options.seed ?? 1;
	}

	get isOn(): boolean {
		return !this.off;
	}

	/** Throws PowerCutError when the board is off: a dead board runs no code, reads included. */
	assertOn(): void {
		if (this.off) throw new PowerCutError();
	}

	/** Counts one persistent op. "torn": power fails during it; the caller applies a partial effect, then calls cut(). */
	beginOp(_kind: string): OpOutcome {
		this.assertOn();
		this.ops++;
		return this.ops === this.cutAfterOps ? "torn" : "full";
	}

	/** Power is lost now; `kind` names the op it interrupted (or what cut it, for an external cut). */
	cut(kind = "external"): void {
		if (this.off) return;
		this.off = true;
		this.cutAt = { op: this.ops, kind };
	}

	/** Deterministic value in (0, 1) from seed and the current op: how much of a torn op lands. */
	tearFraction(): number {
		// 32-bit integer mix (murmur3 finaliser style) of seed and op number.
		let h = (Math.imul(this.seed | 0, 0x9e3779b1) ^ Math.imul(this.ops | 0, 0x85ebca6b)) >>> 0;
		h ^= h >>> 16;
		h = Math.imul(h, 0x7feb352d);
		h ^= h >>> 15;
		h = Math.imul(h, 0x846ca68b);
		h ^= h >>> 16;
		// +0.5 keeps it strictly inside (0, 1).
		return ((h >>> 0) + 0.5) / 0x100000000;
	}
}
