// ESP-IDF's otadata partition in its real binary layout: two 4 KiB sectors, each holding one 32-byte
// select entry. The entry with the highest valid sequence number names the boot slot; its state drives
// the bootloader's rollback. Every change is an erase plus a write, so a power cut between them (or a
// torn write) leaves the sector without a valid entry, and the bootloader then goes by the other one.
//
// Entry layout (little-endian): ota_seq u32 @0, seq_label 20 bytes @4 (left 0xFF), ota_state u32 @24,
// crc u32 @28. The crc covers only the 4 bytes of ota_seq.

import type { FlashPartition } from "./flash-chip";
import { sectorSize } from "./flash-range";

export const OtaState = {
	new: 0,
	pendingVerify: 1,
	valid: 2,
	invalid: 3,
	aborted: 4,
	undefined: 0xffffffff,
} as const;

export const entrySize = 32;
const noSeq = 0xffffffff;

export type OtaFlash = Pick<FlashPartition, "byteLength" | "erase" | "write" | "read">;

export interface OtaEntry {
	sector: number;
	seq: number;
	state: number;
	crc: number;
	/** seq is set and the crc matches: the bootloader takes this entry into account. */
	valid: boolean;
}

export interface BootDecision {
	slot: number;
	/** The newest entry was not booted: its image was aborted, invalid or unbootable. */
	rolledBack: boolean;
	/** State of the booted slot after the bootloader's own update (NEW becomes PENDING_VERIFY). */
	state: number;
}

const crcTable = (() => {
	const table = new Uint32Array(256);
	for (let n = 0; n < 256; n++) {
		let c = n;
		for (let bit = 0; bit < 8; bit++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
		table[n] = c;
	}
	return table;
})();

/**
 * CRC-32 with the ESP32 ROM's crc32_le calling convention: reflected, polynomial 0xEDB88320, and the
 * running value is complemented on the way in and out, so crc32Le(0, data) is the standard CRC-32
 * (zlib, "123456789" → 0xCBF43926) and a previous result can be passed in to continue.
 */
export function crc32Le(crc: number, bytes: Uint8Array): number {
	let c = ~crc >>> 0;
	for (let i = 0; i < bytes.length; i++) c = crcTable[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
	return ~c >>> 0;
}

/**
 * The otadata crc: ESP-IDF calls the ROM crc32_le with UINT32_MAX as the start value, so the register
 * starts at 0, not at 0xFFFFFFFF as in the standard CRC-32. seq 1 → 0x4743989A, as real boards store.
 */
export function seqCrc(seq: number): number {
	const bytes = new Uint8Array(4);
	new DataView(bytes.buffer).setUint32(0, seq, true);
	return crc32Le(0xffffffff, bytes);
}

export function encodeEntry(seq: number, state: number): Uint8Array {
	const bytes = new Uint8Array(entrySize).fill(0xff);
	const view = new DataView(bytes.buffer);
	view.setUint32(0, seq, true);
	view.setUint32(24, state, true);
	view.setUint32(28, seqCrc(seq), true);
	return bytes;
}

export function decodeEntry(sector: number, bytes: Uint8Array): OtaEntry {
	const view = new DataView(bytes.buffer, bytes.byteOffset, entrySize);
	const seq = view.getUint32(0, true);
	const state = view.getUint32(24, true);
	const crc = view.getUint32(28, true);
	return { sector, seq, state, crc, valid: seq !== noSeq && crc === seqCrc(seq) };
}

export const slotOf = (seq: number) => (seq - 1) % 2;

export class OtaData {
	readonly #flash: OtaFlash;

	constructor(flash: OtaFlash) {
		if (flash.byteLength < 2 * sectorSize) throw new Error("otadata too small");
		this.#flash = flash;
	}

	/** Both sectors' entries, valid or not. */
	entries(): OtaEntry[] {
		return [0, 1].map((sector) => decodeEntry(sector, this.#flash.read(sector * sectorSize, entrySize)));
	}

	/** What the bootloader (rollback enabled) boots at power-on; may rewrite one or two entries. */
	bootDecision(slotValid: (slot: number) => boolean): BootDecision {
		const candidates = this.#validEntries();
		if (candidates.length === 0) return { slot: 0, rolledBack: false, state: OtaState.undefined };
		for (let i = 0; i < candidates.length; i++) {
			const entry = candidates[i];
			const slot = slotOf(entry.seq);
			if (entry.state === OtaState.invalid || entry.state === OtaState.aborted || !slotValid(slot)) continue;
			if (entry.state === OtaState.pendingVerify) {
				// Booted once already and never confirmed: the new image failed its self-test.
				this.#rewrite(entry, OtaState.aborted);
				continue;
			}
			if (entry.state === OtaState.new) {
				this.#rewrite(entry, OtaState.pendingVerify);
				return { slot, rolledBack: i > 0, state: OtaState.pendingVerify };
			}
			return { slot, rolledBack: i > 0, state: entry.state };
		}
		// No entry is bootable: like a board without otadata, boot the first app slot.
		return { slot: 0, rolledBack: true, state: this.state(0) };
	}

	/** esp_ota_set_boot_partition: a new entry, state NEW, in the sector not holding the newest one. */
	setBoot(slot: number): void {
		if (slot !== 0 && slot !== 1) throw new Error("invalid slot");
		const newest = this.#validEntries()[0];
		let seq = newest ? newest.seq + 1 : 1;
		if (slotOf(seq) !== slot) seq++;
		const sector = newest ? 1 - newest.sector : 0;
		this.#writeEntry(sector, seq, OtaState.new);
	}

	/** Confirms the running slot's entry so the bootloader keeps it; nothing to do on a factory boot. */
	markValid(slot: number): void {
		const entry = this.#latestFor(slot);
		if (!entry || entry.state === OtaState.valid) return;
		this.#rewrite(entry, OtaState.valid);
	}

	/** State of the newest valid entry for `slot`, or UNDEFINED when it has none. */
	state(slot: number): number {
		return this.#latestFor(slot)?.state ?? OtaState.undefined;
	}

	#validEntries(): OtaEntry[] {
		return this.entries().filter((e) => e.valid).sort((a, b) => b.seq - a.seq);
	}

	#latestFor(slot: number): OtaEntry | undefined {
		return this.#validEntries().find((e) => slotOf(e.seq) === slot);
	}

	#rewrite(entry: OtaEntry, state: number): void {
		this.#writeEntry(entry.sector, entry.seq, state);
	}

	#writeEntry(sector: number, seq: number, state: number): void {
		this.#flash.erase(sector);
		this.#flash.write(sector * sectorSize, entrySize, encodeEntry(seq, state));
	}
}
