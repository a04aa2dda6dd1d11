/*
	A heatshrink encoder (LZSS), writing the bit stream src/delta/heatshrink.ts decodes: most significant bit
	first, a 1 bit and 8 bits for a literal, a 0 bit, (distance − 1) in windowBits and (count − 1) in
	lookaheadBits for a copy of count bytes from distance back (distance ≤ 2^windowBits, count ≤
	2^lookaheadBits); zero bits pad the last byte.
	Matches are found through hash chains over the window (the two bytes at a position lead to the previous
	position with the same two), taken greedily with one step of lazy evaluation (a literal first when the next
	position has a longer match). A copy is used only when its bits are fewer than its literals'. References never
	reach before the first byte, so nothing depends on the decoder's initial window.
*/

import { ByteWriter } from "./byte-writer";

/** The chain of positions that start with the same two bytes, over the last 2^windowBits positions. */
class Chains {
	#head = new Int32Array(1 << 16).fill(-1);
	#previous: Int32Array;
	#mask: number;

	constructor(windowBits: number) {
		this.#previous = new Int32Array(1 << windowBits);
		this.#mask = (1 << windowBits) - 1;
	}

	add(input: Uint8Array, at: number): void {
		if (at + 1 >= input.length) return;
		const key = (input[at] << 8) | input[at + 1];
		this.#previous[at & this.#mask] = this.#head[key];
		this.#head[key] = at;
	}

	first(input: Uint8Array, at: number): number {
		return at + 1 < input.length ? this.#head[(input[at] << 8) | input[at + 1]] : -1;
	}

	after(position: number): number {
		return this.#previous[position & this.#mask];
	}
}

class BitWriter {
	readonly out: ByteWriter;
	#byte = 0;
	#used = 0;

	constructor(capacity: number) {
		this.out = new ByteWriter(capacity);
	}

	write(value: number, width: number): void {
		for (let bit = width - 1; bit >= 0; bit--) {
			this.#byte = (this.#byte << 1) | ((value >> bit) & 1);
			if (++this.#used === 8) {
				this.out.byte(this.#byte);
				this.#byte = this.#used = 0;
			}
		}
	}

	finish(): Uint8Array {
		if (this.#used) this.out.byte(this.#byte << (8 - this.#used));
		return this.out.result();
	}
}

export function heatshrinkCompress(input: Uint8Array, windowBits: number, lookaheadBits: number): Uint8Array {
	const window = 1 << windowBits, longest = 1 << lookaheadBits;
	const copyBits = 1 + windowBits + lookaheadBits;
	// The shortest copy that costs fewer bits than its literals (9 bits each).
	const shortest = Math.floor(copyBits / 9) + 1;
	const chains = new Chains(windowBits);
	const bits = new BitWriter(input.length / 2 + 64);
	const match = { distance: 0, length: 0 };

	const findMatch = (at: number) => {
		match.length = 0;
		const limit = Math.min(longest, input.length - at);
		for (let candidate = chains.first(input, at), steps = window; candidate >= 0 && at - candidate <= window && steps > 0; candidate = chains.after(candidate), steps--) {
			let length = 0;
			while (length < limit && input[candidate + length] === input[at + length]) length++;
			if (length > match.length) {
				match.length = length;
				match.distance = at - candidate;
				if (length === limit) break;
			}
		}
	};

	for (let at = 0; at < input.length;) {
		findMatch(at);
		const { distance, length } = match;
		chains.add(input, at);
		if (length >= shortest && at + 1 < input.length) findMatch(at + 1);
		// Lazy: a longer match one byte on is worth a literal here.
		if (length < shortest || match.length > length) {
			bits.write(0x100 | input[at], 9);
			at++;
			continue;
		}
		bits.write(0, 1);
		bits.write(distance - 1, windowBits);
		bits.write(length - 1, lookaheadBits);
		for (let i = 1; i < length; i++) chains.add(input, at + i);
		at += length;
	}
	return bits.finish();
}
