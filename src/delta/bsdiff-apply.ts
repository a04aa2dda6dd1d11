/*
	Applies the decompressed stream of a detools sequential patch: the new image, front to back.

	The stream: a data-format size (0: none; data formats are refused), then until the new image is complete,
	diff size, diff bytes (each added to the next old byte), extra size, extra bytes (taken as they are) and an
	adjustment of the old position — sizes in detools' encoding (patch-header.ts readSize).
	  formatSize → diffSize → diff → extraSize → extra → adjustment → diffSize … → done
	Old bytes come from the running slot, new ones go through the slot writer (its erase plan).

	Checkpoints: where the new image reaches a sector boundary, checkpointBytes past the last one, inside a diff
	or extra run that has already produced the decompressor's whole window (so a resume re-reads the window from
	flash: extra bytes are new bytes, diff bytes are new minus old) and where the decompressor can stop
	(decompressor.ts). The state there is a handful of numbers (ApplyState).

	RAM: one 1 KiB work buffer. Its lower half collects the new image and is written to flash as it is (no copy)
	when full, where the new image reaches a sector boundary and at its end: two whole 256-byte pages at a time,
	each page programmed once. Extra bytes decode into it in place; diff bytes too, and the old bytes are read
	into the upper half and added. A cut loses only bytes not yet written: they lie past the last checkpoint, as
	everything before a checkpoint is written when it is taken.
*/

import type { FlashSlot, RunningImage } from "../platform/ports";
import type { SlotWriter } from "../agent/slot-writer";
import type { DecoderState, Decompressor } from "./decompressor";

export const Phase = { formatSize: 0, diffSize: 1, diff: 2, extraSize: 3, extra: 4, adjustment: 5, done: 6 } as const;

export interface ApplyState {
	phase: number;
	/** New image bytes made (at a checkpoint, all written). */
	newOffset: number;
	oldOffset: number;
	/** Bytes left in the diff or extra run, and bytes of it already produced. */
	remaining: number;
	runDone: number;
	decoder: DecoderState;
}

export function emptyApplyState(): ApplyState {
	return { phase: 0, newOffset: 0, oldOffset: 0, remaining: 0, runDone: 0, decoder: { consumed: 0, bits: 0, phase: 0, a: 0, b: 0 } };
}

/** Copies `from` into `into`, field by field: a checkpoint allocates nothing. */
export function copyApplyState(from: ApplyState, into: ApplyState): void {
	into.phase = from.phase;
	into.newOffset = from.newOffset;
	into.oldOffset = from.oldOffset;
	into.remaining = from.remaining;
	into.runDone = from.runDone;
	const source = from.decoder, target = into.decoder;
	target.consumed = source.consumed;
	target.bits = source.bits;
	target.phase = source.phase;
	target.a = source.a;
	target.b = source.b;
}

/** Bytes of the work buffer: half for new bytes on their way to flash, half for the old bytes a diff adds. */
const workBytes = 1024;
const half = workBytes / 2;

export interface ApplyPorts {
	running: RunningImage;
	/** The inactive slot, read back to rebuild a window on resume. */
	slot: FlashSlot;
	writer: SlotWriter;
}

export class SequentialApply {
	#ports: ApplyPorts;
	#decoder: Decompressor;
	#newSize: number;
	#oldSize: number;
	#sectorSize: number;
	#checkpointBytes: number;
	#checkpoint: (state: ApplyState) => void;
	#state = emptyApplyState();
	#lastCheckpoint = 0;
	/** A size being read: its value so far, the next byte's scale, its sign, whether its first byte was read. */
	#size = 0;
	#scale = 0;
	#negative = false;
	#work = new Uint8Array(workBytes);
	/** The upper half, where old bytes are read (readInto fills from its target's start); size bytes land there too. */
	#old = this.#work.subarray(half);
	/** New bytes at the front of the work buffer, not yet written. */
	#pending = 0;

	constructor(ports: ApplyPorts, decoder: Decompressor, newSize: number, oldSize: number, checkpointBytes: number, checkpoint: (state: ApplyState) => void) {
		this.#ports = ports;
		this.#decoder = decoder;
		this.#newSize = newSize;
		this.#oldSize = oldSize;
		this.#sectorSize = ports.slot.sectorSize;
		this.#checkpointBytes = checkpointBytes;
		this.#checkpoint = checkpoint;
	}

	get done(): boolean {
		return this.#state.phase === Phase.done;
	}

	get newOffset(): number {
		return this.#state.newOffset;
	}

	/** Continues from a checkpoint: the decompressor's window is rebuilt from the bytes on both slots. */
	resume(saved: ApplyState): void {
		copyApplyState(saved, this.#state);
		this.#lastCheckpoint = saved.newOffset;
		this.#decoder.restore(saved.decoder, (window) => this.#rebuildWindow(window));
	}

	/** Applies the next patch bytes (after the header); throws with a reason when the patch is bad. */
	write(bytes: Uint8Array): void {
		const decoder = this.#decoder;
		decoder.feed(bytes);
		while (this.#step());
		// The chunk is used up: the transport's buffer must not stay alive until the next one.
		decoder.feed(undefined);
	}

	/** One step of the stream; false when the input is used up. */
	#step(): boolean {
		const state = this.#state;
		switch (state.phase) {
			case Phase.diff:
			case Phase.extra:
				return this.#run();
			case Phase.done:
				if (this.#decoder.read(this.#work, half, 1)) throw new Error("patch data after the end");
				return false;
		}
		const size = this.#readSize();
		if (size === undefined) return false;
		switch (state.phase) {
			case Phase.formatSize:
				if (size !== 0) throw new Error("detools data-format patches are not supported");
				state.phase = Phase.diffSize;
				break;
			case Phase.diffSize:
			case Phase.extraSize:
				if (size < 0 || state.newOffset + size > this.#newSize) throw new Error(`patch ${state.phase === Phase.diffSize ? "diff" : "extra"} data too long`);
				state.remaining = size;
				state.runDone = 0;
				state.phase = state.phase === Phase.diffSize ? Phase.diff : Phase.extra;
				break;
			default:
				state.oldOffset += size;
				state.phase = state.newOffset === this.#newSize ? Phase.done : Phase.diffSize;
		}
		return true;
	}

	/** Reads one size byte by byte (it may straddle chunks); undefined until its last byte arrived. */
	#readSize(): number | undefined {
		const work = this.#work;
		while (this.#decoder.read(work, half, 1)) {
			const byte = work[half];
			if (this.#scale === 0) {
				this.#negative = (byte & 0x40) !== 0;
				this.#size = byte & 0x3f;
				this.#scale = 64;
			}
			else {
				if (this.#scale > 2 ** 42) throw new Error("patch size field too long");
				this.#size += (byte & 0x7f) * this.#scale;
				this.#scale *= 128;
			}
			if (byte & 0x80) continue;
			this.#scale = 0;
			return this.#negative ? -this.#size : this.#size;
		}
		return undefined;
	}

	#run(): boolean {
		const state = this.#state, diff = state.phase === Phase.diff;
		if (state.remaining === 0) {
			state.phase = diff ? Phase.extraSize : Phase.adjustment;
			return true;
		}
		const sector = this.#sectorSize, work = this.#work, pending = this.#pending;
		// Stop at each sector boundary: a checkpoint can only fall there.
		const most = Math.min(state.remaining, half - pending, sector - (state.newOffset % sector));
		const length = this.#decoder.read(work, pending, most);
		if (!length) return false;
		if (diff) {
			if (state.oldOffset < 0 || state.oldOffset + length > this.#oldSize) throw new Error("patch reads outside the base image");
			const old = this.#old;
			this.#ports.running.readInto(state.oldOffset, length, old);
			for (let i = 0; i < length; i++) work[pending + i] = (work[pending + i] + old[i]) & 0xff;
			state.oldOffset += length;
		}
		this.#pending += length;
		state.newOffset += length;
		state.remaining -= length;
		state.runDone += length;
		if (this.#pending === half || state.newOffset % sector === 0 || state.newOffset === this.#newSize) {
			if (!this.#ports.writer.writeBuffer(work.buffer as ArrayBuffer, this.#pending)) throw new Error("image larger than the slot");
			this.#pending = 0;
		}
		if (state.newOffset % sector === 0 && state.newOffset - this.#lastCheckpoint >= this.#checkpointBytes &&
			state.runDone >= this.#decoder.windowBytes && this.#decoder.save(state.decoder)) {
			this.#lastCheckpoint = state.newOffset;
			this.#checkpoint(state);
		}
		return true;
	}

	/** The decompressor's last window bytes, oldest first: the run's output (new, minus old for a diff). */
	#rebuildWindow(window: Uint8Array): void {
		const state = this.#state, { slot, running } = this.#ports, old = this.#work;
		const total = window.length, piece = workBytes;
		for (let at = 0; at < total; at += piece) {
			const length = Math.min(piece, total - at), view = window.subarray(at, at + length);
			slot.readInto(state.newOffset - total + at, length, view);
			if (state.phase !== Phase.diff) continue;
			running.readInto(state.oldOffset - total + at, length, old);
			for (let i = 0; i < length; i++) view[i] = (view[i] - old[i]) & 0xff;
		}
	}
}
