// A growing byte buffer (doubling a typed array, no per-byte objects), with detools' size encoding.

export class ByteWriter {
	#bytes: Uint8Array;
	#length = 0;

	constructor(capacity = 4096) {
		this.#bytes = new Uint8Array(Math.max(capacity, 16));
	}

	get length(): number {
		return this.#length;
	}

	/** Room for `count` more bytes; the array to write them into (valid until the next call). */
	reserve(count: number): Uint8Array {
		if (this.#length + count > this.#bytes.length) {
			const grown = new Uint8Array(Math.max(this.#bytes.length * 2, this.#length + count));
			grown.set(this.#bytes.subarray(0, this.#length));
			this.#bytes = grown;
		}
		return this.#bytes;
	}

	byte(value: number): void {
		this.reserve(1)[this.#length++] = value;
	}

	bytes(values: Uint8Array): void {
		this.reserve(values.length).set(values, this.#length);
		this.#length += values.length;
	}

	/** Marks `count` bytes written straight into reserve()'s array. */
	advance(count: number): void {
		this.#length += count;
	}

	/**
		detools' size encoding (src/delta/patch-header.ts readSize): 6 bits of the magnitude, the sign in bit 6
		and "more" in bit 7 of the first byte; then 7 bits a byte, least significant first, bit 7 "more".
	*/
	size(value: number): void {
		let magnitude = Math.abs(value);
		let first = (magnitude % 64) | (value < 0 ? 0x40 : 0);
		magnitude = Math.floor(magnitude / 64);
		if (magnitude) first |= 0x80;
		this.byte(first);
		while (magnitude) {
			const low = magnitude % 128;
			magnitude = Math.floor(magnitude / 128);
			this.byte(magnitude ? low | 0x80 : low);
		}
	}

	/** The bytes written, as a copy of exactly that length. */
	result(): Uint8Array {
		return this.#bytes.slice(0, this.#length);
	}

	/** The bytes written, as a view (valid until the next write). */
	view(): Uint8Array {
		return this.#bytes.subarray(0, this.#length);
	}
}
