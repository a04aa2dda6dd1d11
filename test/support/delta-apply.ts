// The device's patch applier (src/delta) driven directly, in memory: a patch's header, and its application to
// an old image from chunks of pseudo-random sizes, with the checkpoints it took.

import * as assert from "uvu/assert";
import { MemorySlot } from "./memory-slot";
import { SlotWriter } from "../../src/agent/slot-writer";
import { SequentialApply, type ApplyState } from "../../src/delta/bsdiff-apply";
import { emptyHeader, readHeader, type PatchHeader } from "../../src/delta/patch-header";
import { decompressorFor } from "../../src/delta/patch-sink";

/** The running image over `bytes`. */
export function running(bytes: Uint8Array) {
	return { byteLength: bytes.length, readInto: (offset: number, length: number, into: Uint8Array) => into.set(bytes.subarray(offset, offset + length)) };
}

export function header(patch: Uint8Array): PatchHeader {
	const parsed = emptyHeader();
	const answer = readHeader(patch, Math.min(patch.length, 80), parsed);
	assert.is(answer, "ok");
	return parsed;
}

/** Applies `patch` to `old` in chunks of pseudo-random sizes up to `chunk`; returns the slot and the checkpoints. */
export function apply(patch: Uint8Array, old: Uint8Array, chunk: number, slot = new MemorySlot(327680)) {
	const parsed = header(patch);
	const checkpoints: ApplyState[] = [];
	const writer = new SlotWriter(slot, 1024, () => false);
	writer.begin(0, true, parsed.newSize);
	const applier = new SequentialApply({ running: running(old), slot, writer }, decompressorFor(parsed), parsed.newSize, old.length, 16384,
		(state) => checkpoints.push(structuredClone(state)));
	let seed = chunk;
	for (let at = parsed.dataOffset; at < patch.length;) {
		seed = (seed * 1103515245 + 12345) >>> 0;
		const length = 1 + (seed % chunk);
		applier.write(patch.subarray(at, at + length));
		at += length;
	}
	return { slot, checkpoints, done: applier.done, parsed };
}

/** Cuts `patch`'s application to `old` at each of its checkpoints and resumes from there: each gives `next`. */
export function assertResumes(patch: Uint8Array, old: Uint8Array, next: Uint8Array, what: string): void {
	const { checkpoints, parsed } = apply(patch, old, 3000);
	assert.ok(checkpoints.length >= 2, `${what}: ${checkpoints.length} checkpoints`);
	for (const saved of checkpoints) {
		// The slot as a cut leaves it: everything written, garbage past the checkpoint in the next sectors.
		const { slot } = apply(patch, old, 3000);
		slot.bytes.fill(0x00, saved.newOffset, saved.newOffset + 5000);
		const writer = new SlotWriter(slot, 1024, (sector) => (sector + 1) * slot.sectorSize <= saved.newOffset);
		writer.begin(saved.newOffset, false, parsed.newSize);
		const applier = new SequentialApply({ running: running(old), slot, writer }, decompressorFor(parsed), parsed.newSize, old.length, 16384, () => {});
		applier.resume(saved);
		const from = parsed.dataOffset + saved.decoder.consumed;
		for (let at = from; at < patch.length; at += 777) applier.write(patch.subarray(at, Math.min(at + 777, patch.length)));
		assert.ok(applier.done, `${what} from ${saved.newOffset}`);
		assert.equal(slot.bytes.subarray(0, next.length), next, `${what} resumed at ${saved.newOffset}`);
	}
}
