/*
	detools' CRLE ("conditional run-length encoding"): a row of segments, each a kind byte and a size
	(7 bits a byte, least significant first, high bit = more): kind 0 "scattered" is followed by size bytes as
	they are, kind 1 "repeated" by one byte to repeat size times.
	  kind → size → scattered bytes → kind …
	              → repeated value → repeated output → kind …
	A checkpoint may fall between segments or inside a segment's output; never inside a size.
*/

import type { DecoderState, Decompressor } from "./decompressor";

const Phase = { kind: 0, size: 1, scattered: 2, value: 3, repeated: 4 } as const;
const scatteredKind = 0, repeatedKind = 1;

export class Crle implements Decompressor {
	#input: Uint8Array | undefined;
	#at = 0;
	#consumed = 0;
	#phase: number = Phase.kind;
	#kind = 0;
	#size = 0;
	#shift = 0;
	#remaining = 0;
	#value = 0;
	readonly windowBytes = 0;

	feed(bytes: Uint8Array | undefined): void {
		this.#input = bytes;
		this.#at = 0;
	}

	read(into: Uint8Array, at: number, count: number): number {
		const input = this.#input;
		let done = 0;
		while (done < count) {
			if (this.#phase === Phase.repeated) {
				const length = Math.min(count - done, this.#remaining);
				into.fill(this.#value, at + done, at + done + length);
				done += length;
				if ((this.#remaining -= length) === 0) this.#phase = Phase.kind;
				continue;
			}
			if (!input || this.#at === input.length) break;
			if (this.#phase === Phase.scattered) {
				const length = Math.min(count - done, this.#remaining, input.length - this.#at);
				into.set(input.subarray(this.#at, this.#at + length), at + done);
				this.#at += length;
				this.#consumed += length;
				done += length;
				if ((this.#remaining -= length) === 0) this.#phase = Phase.kind;
				continue;
			}
			const byte = input[this.#at++];
			this.#consumed++;
			if (this.#phase === Phase.kind) {
				if (byte !== scatteredKind && byte !== repeatedKind) throw new Error(`crle: bad segment kind ${byte}`);
				this.#kind = byte;
				this.#size = this.#shift = 0;
				this.#phase = Phase.size;
			}
			else if (this.#phase === Phase.size) {
				if (this.#shift > 28) throw new Error("crle: size too long");
				this.#size += (byte & 0x7f) * 2 ** this.#shift;
				this.#shift += 7;
				if (byte & 0x80) continue;
				this.#remaining = this.#size;
				if (this.#kind === repeatedKind) this.#phase = Phase.value;
				else this.#phase = this.#size ? Phase.scattered : Phase.kind;
			}
			else {
				this.#value = byte;
				this.#phase = this.#remaining ? Phase.repeated : Phase.kind;
			}
		}
		return done;
	}

	save(state: DecoderState): boolean {
		const phase = this.#phase;
		if (phase !== Phase.kind && phase !== Phase.scattered && phase !== Phase.repeated) return false;
		state.consumed = this.#consumed;
		state.bits = 0;
		state.phase = phase;
		state.a = this.#remaining;
		state.b = this.#value;
		return true;
	}

	restore(state: DecoderState): void {
		this.#consumed = state.consumed;
		this.#phase = state.phase;
		this.#remaining = state.a;
		this.#value = state.b;
	}
}
