/*
	A heatshrink decoder (LZSS over a 2^window byte window, as detools and ESP-IDF's esp_delta_ota use it).
	The input is a bit stream, most significant bit first: a 1 tag bit and 8 bits are a literal byte; a 0 tag
	bit, window bits (distance − 1) and lookahead bits (count − 1) copy count bytes from distance bytes back,
	where the copy may overlap what it writes. The window starts zero-filled; the stream ends with < 8 bits of
	padding.
	  tag → literal → tag
	      → distance → count → copy (count bytes) → tag
	A checkpoint may fall at a tag or inside a copy; the window itself is not saved but re-read by the applier
	(restore's fill) from the output already on flash.
*/

import type { DecoderState, Decompressor } from "./decompressor";

const Phase = { tag: 0, literal: 1, distance: 2, count: 3, copy: 4 } as const;

export class Heatshrink implements Decompressor {
	readonly windowBytes: number;
	#windowBits: number;
	#lookaheadBits: number;
	#window: Uint8Array;
	#head = 0;
	#input: Uint8Array | undefined;
	#at = 0;
	#consumed = 0;
	/** The byte being read, and the mask of its next bit (0: take the next byte). */
	#byte = 0;
	#mask = 0;
	/** Bits of a field gathered so far, when the input ran out in the middle of it. */
	#field = 0;
	#fieldBits = 0;
	#phase: number = Phase.tag;
	#distance = 0;
	#remaining = 0;
	/** After a restore, the mask to start the first byte at. */
	#resumeMask = 0;

	constructor(windowBits: number, lookaheadBits: number) {
		this.#windowBits = windowBits;
		this.#lookaheadBits = lookaheadBits;
		this.windowBytes = 1 << windowBits;
		this.#window = new Uint8Array(this.windowBytes);
	}

	feed(bytes: Uint8Array | undefined): void {
		this.#input = bytes;
		this.#at = 0;
	}

	read(into: Uint8Array, at: number, count: number): number {
		const window = this.#window, mask = this.windowBytes - 1;
		let done = 0;
		// An if chain, not a switch: XS (Moddable 8.2.3) left a slot on the JS stack for each `continue` out of a
		// switch in a loop, so a long read overflowed the device's stack.
		while (done < count) {
			const phase = this.#phase;
			if (phase === Phase.copy) {
				const length = Math.min(count - done, this.#remaining), distance = this.#distance;
				let head = this.#head;
				for (let i = 0; i < length; i++, head++) {
					const byte = window[(head - distance) & mask];
					window[head & mask] = byte;
					into[at + done + i] = byte;
				}
				this.#head = head & mask;
				done += length;
				if ((this.#remaining -= length) === 0) this.#phase = Phase.tag;
			}
			else if (phase === Phase.tag) {
				const bit = this.#bits(1);
				if (bit < 0) return done;
				this.#phase = bit ? Phase.literal : Phase.distance;
			}
			else if (phase === Phase.literal) {
				const byte = this.#bits(8);
				if (byte < 0) return done;
				window[this.#head] = byte;
				this.#head = (this.#head + 1) & mask;
				into[at + done++] = byte;
				this.#phase = Phase.tag;
			}
			else if (phase === Phase.distance) {
				const value = this.#bits(this.#windowBits);
				if (value < 0) return done;
				this.#distance = value + 1;
				this.#phase = Phase.count;
			}
			else {
				const value = this.#bits(this.#lookaheadBits);
				if (value < 0) return done;
				this.#remaining = value + 1;
				this.#phase = Phase.copy;
			}
		}
		return done;
	}

	/** The next `width` bits as a number, or −1 when the input ran out (the bits read so far are kept). */
	#bits(width: number): number {
		while (this.#fieldBits < width) {
			if (this.#mask === 0) {
				const input = this.#input;
				if (!input || this.#at === input.length) return -1;
				this.#byte = input[this.#at++];
				this.#consumed++;
				this.#mask = this.#resumeMask || 0x80;
				this.#resumeMask = 0;
			}
			this.#field = (this.#field << 1) | (this.#byte & this.#mask ? 1 : 0);
			this.#mask >>= 1;
			this.#fieldBits++;
		}
		const value = this.#field;
		this.#field = this.#fieldBits = 0;
		return value;
	}

	save(state: DecoderState): boolean {
		const phase = this.#phase;
		if (phase !== Phase.tag && phase !== Phase.copy) return false;
		// A byte partly read is fetched again after a cut: the checkpoint names it and the bits already taken.
		const partly = this.#mask !== 0;
		state.consumed = partly ? this.#consumed - 1 : this.#consumed;
		state.bits = partly ? 7 - Math.log2(this.#mask) : 0;
		state.phase = phase;
		state.a = this.#distance;
		state.b = this.#remaining;
		return true;
	}

	restore(state: DecoderState, fill: (window: Uint8Array) => void): void {
		this.#consumed = state.consumed;
		this.#mask = 0;
		this.#resumeMask = state.bits ? 0x80 >> state.bits : 0;
		this.#field = this.#fieldBits = 0;
		this.#phase = state.phase;
		this.#distance = state.a;
		this.#remaining = state.b;
		fill(this.#window);
		this.#head = 0;
	}
}
