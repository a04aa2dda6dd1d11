// Writes a package into the inactive slot front to back, for the transfers that deliver bytes in order (a
// CoAP pull, a pushed package). The erase plan (erase-plan.ts) erases ahead of each write, never a sector the
// transfer keeps. Payloads arrive as views into a datagram: they are copied into one scratch buffer (flash
// writes take a whole ArrayBuffer), never into a new one. A writer that is handed whole buffers (the delta
// applier's work buffer: writeBuffer) needs no scratch (scratchBytes 0).

import type { FlashSlot } from "../platform/ports";
import { ErasePlan, type KeptSector } from "./erase-plan";

export class SlotWriter {
	#slot: FlashSlot;
	#plan: ErasePlan;
	#scratch: Uint8Array;
	#offset = 0;

	constructor(slot: FlashSlot, scratchBytes: number, kept: KeptSector) {
		this.#slot = slot;
		this.#plan = new ErasePlan(slot, kept);
		this.#scratch = new Uint8Array(scratchBytes);
	}

	/** Where the next write goes. */
	get offset(): number {
		return this.#offset;
	}

	/**
		Continues at `offset` (a sector boundary at power-on, any offset already written up to in this one).
		`fresh`: the bytes written so far belong to a body being replaced. `imageSize`: 0 while unknown.
	*/
	begin(offset: number, fresh: boolean, imageSize: number): void {
		if (fresh) this.#plan.reset();
		this.#plan.setImageSize(imageSize);
		this.#offset = offset;
	}

	/** Writes `bytes` at the offset; false when they would pass the end of the slot (nothing is written). */
	write(bytes: Uint8Array): boolean {
		const slot = this.#slot, end = this.#offset + bytes.length;
		if (end > slot.byteLength) return false;
		const scratch = this.#scratch;
		if (!scratch.length) throw new Error("slot writer has no scratch");
		this.#plan.prepare(this.#offset, end);
		for (let at = 0; at < bytes.length; at += scratch.length) {
			const length = Math.min(scratch.length, bytes.length - at);
			scratch.set(bytes.subarray(at, at + length));
			slot.write(this.#offset + at, length, scratch.buffer as ArrayBuffer);
		}
		this.#offset = end;
		return true;
	}

	/** Writes the first `length` bytes of `buffer` at the offset, without a copy; false as write() does. */
	writeBuffer(buffer: ArrayBuffer, length: number): boolean {
		const end = this.#offset + length;
		if (end > this.#slot.byteLength) return false;
		this.#plan.prepare(this.#offset, end);
		this.#slot.write(this.#offset, length, buffer);
		this.#offset = end;
		return true;
	}
}
