/*
	AES-CCM (RFC 3610) with an 8-byte tag, as TLS_PSK_WITH_AES_128_CCM_8 uses it (RFC 6655): CBC-MAC over
	B0, the encoded additional data and the message, then CTR mode from counter 1, the tag masked with
	counter 0's key stream. In place on the caller's buffer, with four scratch blocks and no allocation.
*/

import type { BlockCipher } from "../platform/ports";

export const tagBytes = 8;

export class Ccm8 {
	readonly #cipher: BlockCipher;
	readonly #mac = new Uint8Array(16);
	readonly #counter = new Uint8Array(16);
	readonly #stream = new Uint8Array(16);
	readonly #block = new Uint8Array(16);
	readonly #tag = new Uint8Array(tagBytes);
	#macAt = 0;

	constructor(cipher: BlockCipher) {
		this.#cipher = cipher;
	}

	/** Encrypts bytes offset..offset+length of `buffer` in place and writes the tag right after them. */
	seal(nonce: Uint8Array, aad: Uint8Array, buffer: Uint8Array, offset: number, length: number): void {
		this.#authenticate(nonce, aad, buffer, offset, length);
		this.#setCounter(nonce);
		this.#crypt(buffer, offset, length);
		this.#maskedTag(buffer, offset + length);
	}

	/** Decrypts in place the `length` bytes before the tag at offset+length; false (and garbage) when the tag is wrong. */
	open(nonce: Uint8Array, aad: Uint8Array, buffer: Uint8Array, offset: number, length: number): boolean {
		this.#setCounter(nonce);
		this.#crypt(buffer, offset, length);
		this.#authenticate(nonce, aad, buffer, offset, length);
		const tag = this.#tag;
		this.#maskedTag(tag, 0);
		let difference = 0;
		for (let i = 0; i < tagBytes; i++) difference |= tag[i] ^ buffer[offset + length + i];
		return difference === 0;
	}

	#authenticate(nonce: Uint8Array, aad: Uint8Array, buffer: Uint8Array, offset: number, length: number): void {
		const mac = this.#mac, sizeBytes = 15 - nonce.length;
		mac[0] = (aad.length ? 0x40 : 0) | (((tagBytes - 2) / 2) << 3) | (sizeBytes - 1);
		mac.set(nonce, 1);
		for (let i = 0, size = length; i < sizeBytes; i++, size = Math.floor(size / 256)) mac[15 - i] = size & 0xff;
		this.#cipher.encrypt(mac, mac);
		this.#macAt = 0;
		if (aad.length) {
			// Additional data shorter than 0xff00 bytes: a 2-byte length first (RFC 3610 §2.2).
			this.#absorbByte(aad.length >> 8);
			this.#absorbByte(aad.length & 0xff);
			for (let i = 0; i < aad.length; i++) this.#absorbByte(aad[i]);
			this.#pad();
		}
		for (let i = offset, end = offset + length; i < end; i++) this.#absorbByte(buffer[i]);
		this.#pad();
	}

	#absorbByte(byte: number): void {
		this.#mac[this.#macAt] ^= byte;
		if (++this.#macAt === 16) {
			this.#cipher.encrypt(this.#mac, this.#mac);
			this.#macAt = 0;
		}
	}

	#pad(): void {
		if (!this.#macAt) return;
		this.#cipher.encrypt(this.#mac, this.#mac);
		this.#macAt = 0;
	}

	/** Counter block A0: flags (L-1), the nonce, counter 0. */
	#setCounter(nonce: Uint8Array): void {
		const counter = this.#counter;
		counter.fill(0);
		counter[0] = 14 - nonce.length;
		counter.set(nonce, 1);
	}

	/** XORs the key stream of counters 1, 2, … into the bytes. */
	#crypt(buffer: Uint8Array, offset: number, length: number): void {
		const block = this.#block, stream = this.#stream;
		block.set(this.#counter);
		for (let done = 0; done < length; done += 16) {
			for (let i = 15; i > 0 && ++block[i] === 256; i--) block[i] = 0;
			this.#cipher.encrypt(block, stream);
			for (let i = 0, n = Math.min(16, length - done); i < n; i++) buffer[offset + done + i] ^= stream[i];
		}
	}

	/** The CBC-MAC's first bytes masked with counter 0's key stream, written at `into[at]`. */
	#maskedTag(into: Uint8Array, at: number): void {
		const stream = this.#stream;
		this.#cipher.encrypt(this.#counter, stream);
		for (let i = 0; i < tagBytes; i++) into[at + i] = this.#mac[i] ^ stream[i];
	}
}
