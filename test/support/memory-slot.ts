// In-memory stand-ins for the flash and digest ports, with the device's semantics where tests rely on them.

import { createHash, type Hash } from "node:crypto";
import type { Digest, FlashSlot } from "../../src/platform/ports";

/**
	NOR flash in RAM: starts erased, erase sets a whole sector (eraseBlock a whole block) to 0xFF, writes only
	clear bits. `erases` logs every erase as the byte range it cleared, `writes` every write as the range it
	programmed, in order.
*/
export class MemorySlot implements FlashSlot {
	readonly bytes: Uint8Array;
	readonly byteLength: number;
	readonly sectorSize: number;
	readonly blockSize: number;
	readonly erases: { start: number; end: number }[] = [];
	readonly writes: { start: number; end: number }[] = [];

	constructor(byteLength: number, sectorSize = 4096, blockSize = 65536) {
		if (!(byteLength > 0 && byteLength % sectorSize === 0)) throw new Error("slot must be whole sectors");
		if (blockSize % sectorSize) throw new Error("block must be whole sectors");
		this.byteLength = byteLength;
		this.sectorSize = sectorSize;
		this.blockSize = blockSize;
		this.bytes = new Uint8Array(byteLength).fill(0xff);
	}

	erase(sector: number): void {
		this.#clear(sector, this.sectorSize);
	}

	eraseBlock(block: number): void {
		this.#clear(block, this.blockSize);
	}

	#clear(index: number, size: number): void {
		const start = index * size;
		if (!Number.isInteger(index) || index < 0 || start + size > this.byteLength) throw new Error("erase failed");
		this.bytes.fill(0xff, start, start + size);
		this.erases.push({ start, end: start + size });
	}

	write(offset: number, byteLength: number, buffer: ArrayBuffer): void {
		if (!this.inRange(offset, byteLength) || byteLength > buffer.byteLength) throw new Error("write failed");
		const source = new Uint8Array(buffer, 0, byteLength);
		this.writes.push({ start: offset, end: offset + byteLength });
		for (let i = 0; i < byteLength; i++) this.bytes[offset + i] &= source[i];
	}

	readInto(offset: number, byteLength: number, into: Uint8Array): void {
		if (!this.inRange(offset, byteLength) || byteLength > into.length) throw new Error("read failed");
		into.set(this.bytes.subarray(offset, offset + byteLength));
	}

	private inRange(offset: number, byteLength: number): boolean {
		return Number.isInteger(offset) && Number.isInteger(byteLength) && offset >= 0 && byteLength >= 0 && offset + byteLength <= this.byteLength;
	}
}

/** SHA-256 through node:crypto; after finish, writes throw until reset, as a misuse should. */
export class NodeDigest implements Digest {
	private hash: Hash | undefined = createHash("sha256");

	reset(): void {
		this.hash = createHash("sha256");
	}

	write(bytes: Uint8Array): void {
		if (!this.hash) throw new Error("digest finished");
		this.hash.update(bytes);
	}

	finish(into: Uint8Array): void {
		if (!this.hash) throw new Error("digest finished");
		into.set(this.hash.digest());
		this.hash = undefined;
	}
}
