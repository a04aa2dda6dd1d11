// HMAC-SHA-256 (RFC 2104) over the platform's SHA-256 port: the pads are computed once per key, each MAC
// then costs two digests and no allocation.

import type { Digest } from "../platform/ports";

const blockBytes = 64;
export const macBytes = 32;

export class HmacSha256 {
	readonly #digest: Digest;
	readonly #innerPad = new Uint8Array(blockBytes);
	readonly #outerPad = new Uint8Array(blockBytes);
	readonly #inner = new Uint8Array(macBytes);

	constructor(digest: Digest) {
		this.#digest = digest;
	}

	/** Keys longer than a block are hashed first, as RFC 2104 says. */
	setKey(key: Uint8Array): void {
		let material = key;
		if (key.length > blockBytes) {
			this.#digest.reset();
			this.#digest.write(key);
			material = new Uint8Array(macBytes);
			this.#digest.finish(material);
		}
		this.#innerPad.fill(0x36);
		this.#outerPad.fill(0x5c);
		for (let i = 0; i < material.length; i++) {
			this.#innerPad[i] ^= material[i];
			this.#outerPad[i] ^= material[i];
		}
	}

	start(): void {
		this.#digest.reset();
		this.#digest.write(this.#innerPad);
	}

	write(bytes: Uint8Array): void {
		this.#digest.write(bytes);
	}

	/** Writes the 32-byte MAC of what was written since start() into `into`. */
	finish(into: Uint8Array): void {
		const digest = this.#digest;
		digest.finish(this.#inner);
		digest.reset();
		digest.write(this.#outerPad);
		digest.write(this.#inner);
		digest.finish(into);
	}
}
