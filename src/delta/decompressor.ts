// The shape of the patch decompressors (detools' "none", "crle" and "heatshrink"), and "none" itself.
// Input arrives in chunks of any size and is consumed before the call that fed it returns; output is pulled
// a few bytes at a time, so the applier can stop a decompressor exactly where a checkpoint falls.

/** What a checkpoint keeps of a decompressor: small numbers only (a window is re-read from flash). */
export interface DecoderState {
	/** Input bytes (from the start of the compressed data) wholly consumed; a partly read byte is not counted. */
	consumed: number;
	/** Bits of the byte at `consumed` already read (0–7). */
	bits: number;
	phase: number;
	a: number;
	b: number;
}

export interface Decompressor {
	/** The next input bytes, used until read() returns 0; undefined lets the last ones go. */
	feed(bytes: Uint8Array | undefined): void;
	/** Up to `count` decompressed bytes into `into` from `at`; 0 when the input fed is used up. Throws on bad data. */
	read(into: Uint8Array, at: number, count: number): number;
	/** Bytes of the last 2^n of output a resume needs back (fill()), 0 for none. */
	readonly windowBytes: number;
	/** Copies the state into `state`; false when the decompressor stands where it cannot be resumed from. */
	save(state: DecoderState): boolean;
	/** Continues from a saved state; `fill` writes the window's bytes, oldest first, when windowBytes > 0. */
	restore(state: DecoderState, fill: (window: Uint8Array) => void): void;
}

/** detools compression "none": the bytes as they are. */
export class Stored implements Decompressor {
	#input: Uint8Array | undefined;
	#at = 0;
	#consumed = 0;
	readonly windowBytes = 0;

	feed(bytes: Uint8Array | undefined): void {
		this.#input = bytes;
		this.#at = 0;
	}

	read(into: Uint8Array, at: number, count: number): number {
		const input = this.#input;
		const length = input ? Math.min(count, input.length - this.#at) : 0;
		if (!length) return 0;
		into.set(input!.subarray(this.#at, this.#at + length), at);
		this.#at += length;
		this.#consumed += length;
		return length;
	}

	save(state: DecoderState): boolean {
		state.consumed = this.#consumed;
		state.bits = state.phase = state.a = state.b = 0;
		return true;
	}

	restore(state: DecoderState): void {
		this.#consumed = state.consumed;
	}
}
