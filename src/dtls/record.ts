/*
	The DTLS 1.2 record layer (RFC 6347 §4.1): a 13-byte header — content type, version {254, 253}, epoch,
	48-bit sequence number, length — and, from epoch 1 on, the AES-128-CCM-8 protection of RFC 6655: an
	8-byte explicit nonce (the record's epoch and sequence number) before the ciphertext, the tag after it,
	the nonce's first 4 bytes the write IV, the additional data the sequence number, type, version and
	plaintext length. Records are built in and opened from the caller's buffers.
*/

import { Ccm8, tagBytes } from "./ccm";
import type { BlockCipher } from "../platform/ports";

export const ContentType = { changeCipherSpec: 20, alert: 21, handshake: 22, applicationData: 23 } as const;
export const headerBytes = 13;
const explicitNonceBytes = 8;
/** What protection adds to a record's plaintext. */
export const protectionBytes = explicitNonceBytes + tagBytes;
export const versionMajor = 254, versionMinor = 253;

export interface RecordHeader {
	type: number;
	epoch: number;
	sequence: number;
	/** Where the fragment starts in the datagram, and its length. */
	start: number;
	length: number;
}

/** Reads the record at `offset`; undefined when the rest of the datagram holds no whole record. */
export function readHeader(datagram: Uint8Array, offset: number, into: RecordHeader): RecordHeader | undefined {
	if (datagram.length - offset < headerBytes) return undefined;
	const length = (datagram[offset + 11] << 8) | datagram[offset + 12];
	if (offset + headerBytes + length > datagram.length || datagram[offset + 1] !== versionMajor) return undefined;
	into.type = datagram[offset];
	into.epoch = (datagram[offset + 3] << 8) | datagram[offset + 4];
	into.sequence = readUint48(datagram, offset + 5);
	into.start = offset + headerBytes;
	into.length = length;
	return into;
}

export function writeHeader(into: Uint8Array, offset: number, type: number, epoch: number, sequence: number, length: number): void {
	into[offset] = type;
	into[offset + 1] = versionMajor;
	into[offset + 2] = versionMinor;
	into[offset + 3] = epoch >> 8;
	into[offset + 4] = epoch & 0xff;
	writeUint48(into, offset + 5, sequence);
	into[offset + 11] = length >> 8;
	into[offset + 12] = length & 0xff;
}

export function readUint48(bytes: Uint8Array, offset: number): number {
	let value = 0;
	for (let i = 0; i < 6; i++) value = value * 256 + bytes[offset + i];
	return value;
}

export function writeUint48(into: Uint8Array, offset: number, value: number): void {
	for (let i = 5; i >= 0; i--, value = Math.floor(value / 256)) into[offset + i] = value & 0xff;
}

/** One direction's keys of epoch 1: CCM-8 under the write key, and the 4-byte write IV. */
export class RecordProtection {
	readonly #ccm: Ccm8;
	readonly #nonce = new Uint8Array(12);
	readonly #aad = new Uint8Array(13);

	constructor(cipher: BlockCipher, iv: Uint8Array) {
		this.#ccm = new Ccm8(cipher);
		this.#nonce.set(iv.subarray(0, 4));
	}

	/**
		Protects the `length` plaintext bytes already at headerBytes + 8 of `record` (from `offset`): writes the
		header, the explicit nonce and the tag. The record's whole length.
	*/
	seal(record: Uint8Array, offset: number, type: number, epoch: number, sequence: number, length: number): number {
		writeHeader(record, offset, type, epoch, sequence, length + protectionBytes);
		record.copyWithin(offset + headerBytes, offset + 3, offset + 11);
		this.#prepare(record, offset + headerBytes, type, length);
		this.#ccm.seal(this.#nonce, this.#aad, record, offset + headerBytes + explicitNonceBytes, length);
		return headerBytes + length + protectionBytes;
	}

	/** Decrypts a record's fragment in place; the plaintext's length (at start + 8), or -1 when it is not authentic. */
	open(datagram: Uint8Array, header: RecordHeader): number {
		const length = header.length - protectionBytes;
		if (length < 0) return -1;
		this.#prepare(datagram, header.start, header.type, length);
		// The additional data names the header's epoch and sequence number, whatever the explicit nonce says.
		this.#aad[0] = header.epoch >> 8;
		this.#aad[1] = header.epoch & 0xff;
		writeUint48(this.#aad, 2, header.sequence);
		return this.#ccm.open(this.#nonce, this.#aad, datagram, header.start + explicitNonceBytes, length) ? length : -1;
	}

	#prepare(bytes: Uint8Array, explicitNonce: number, type: number, length: number): void {
		const nonce = this.#nonce, aad = this.#aad;
		for (let i = 0; i < explicitNonceBytes; i++) nonce[4 + i] = aad[i] = bytes[explicitNonce + i];
		aad[8] = type;
		aad[9] = versionMajor;
		aad[10] = versionMinor;
		aad[11] = length >> 8;
		aad[12] = length & 0xff;
	}
}
