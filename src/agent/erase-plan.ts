/*
	The erase plan: before bytes are written to the slot, the sectors they touch must be erased (NOR writes only
	clear bits). The plan erases each sector at most once per power-on, and chooses a block erase (64 KiB, one
	operation) over sector erases wherever that is both safe and cheaper.

	A block is erased whole only when
	  - no sector of it holds bytes the transport keeps (the record's checkpoint: a committed prefix over HTTP,
	    committed blocks over an MQTT stream), and
	  - none of its sectors was erased in this power-on (so nothing written in this power-on lies in it), and
	  - at least blockWorth of its sectors lie before the image's end: one block erase costs about what
	    3.3 sector erases do (W25Q32JV, typical: 150 against 45 ms).
	Any other sector is erased on its own, and a kept sector never: the transports write only what they do not
	keep, and the plan refuses to erase a kept sector if one asks.

	Power cuts need nothing persisted beyond the checkpoint. A cut during a block erase leaves the block torn
	(some sectors erased, some old, one half-way): the record still shows nothing kept in it, so the next
	power-on erases it whole again. After a resume inside a block, the block holds kept sectors, so only its
	sectors past the checkpoint are erased, one by one; the blocks after it are erased whole.
*/

import type { FlashSlot } from "../platform/ports";

/** Sectors of a block that must need erasing before one block erase beats sector erases. */
export const blockWorth = 4;

/** Whether sector `sector` holds bytes the transport keeps; asked only while the plan decides. */
export type KeptSector = (sector: number) => boolean;

export class ErasePlan {
	#slot: FlashSlot;
	#kept: KeptSector;
	/** Sectors erased in this power-on, one bit each. */
	#erased: Uint8Array;
	#sectorsPerBlock: number;
	/** Where the image ends (the slot's end while unknown): sectors past it never make a block erase worth it. */
	#imageEnd: number;

	constructor(slot: FlashSlot, kept: KeptSector) {
		this.#slot = slot;
		this.#kept = kept;
		this.#erased = new Uint8Array(Math.ceil(slot.byteLength / slot.sectorSize / 8));
		this.#sectorsPerBlock = slot.blockSize / slot.sectorSize;
		this.#imageEnd = slot.byteLength;
	}

	/** The image's size in bytes, once known (0: unknown). */
	setImageSize(byteLength: number): void {
		this.#imageEnd = byteLength > 0 ? Math.min(byteLength, this.#slot.byteLength) : this.#slot.byteLength;
	}

	/** Forgets what this power-on erased: bytes written so far belong to a body that is being replaced. */
	reset(): void {
		this.#erased.fill(0);
	}

	/** Erases whatever of [start, end) is not yet erased in this power-on. */
	prepare(start: number, end: number): void {
		const slot = this.#slot, sectorSize = slot.sectorSize;
		for (let sector = Math.floor(start / sectorSize); sector * sectorSize < end; sector++) {
			if (this.#has(sector)) continue;
			const block = Math.floor(sector / this.#sectorsPerBlock);
			if (this.#blockErasable(block)) {
				slot.eraseBlock(block);
				const first = block * this.#sectorsPerBlock;
				for (let i = first; i < first + this.#sectorsPerBlock; i++) this.#set(i);
				continue;
			}
			if (this.#kept(sector)) throw new Error(`sector ${sector} holds committed bytes`);
			slot.erase(sector);
			this.#set(sector);
		}
	}

	#blockErasable(block: number): boolean {
		const perBlock = this.#sectorsPerBlock, sectorSize = this.#slot.sectorSize;
		if (perBlock < 2 || (block + 1) * perBlock * sectorSize > this.#slot.byteLength) return false;
		const first = block * perBlock;
		if (Math.min(perBlock, Math.ceil(this.#imageEnd / sectorSize) - first) < blockWorth) return false;
		for (let sector = first; sector < first + perBlock; sector++)
			if (this.#has(sector) || this.#kept(sector)) return false;
		return true;
	}

	#has(sector: number): boolean {
		return (this.#erased[sector >> 3] & (1 << (sector & 7))) !== 0;
	}

	#set(sector: number): void {
		this.#erased[sector >> 3] |= 1 << (sector & 7);
	}
}
