/*
	A package that is a patch, between a transport and the slot writer: header → base check → apply.

	header: the first bytes are held (at most maxHeaderBytes) until the header is read; esp_delta_ota framing
	names the base, whose SHA-256 must be the running image's before anything is written (else 6, nothing
	written). A patch refused for its kind ends with 6, a bad or truncated one with 5.
	The record's committed offset is the patch offset of the last checkpoint (the transport fetches from there)
	and record.patch holds the applier's state there; when the patch is done the record names the new image
	(committed = total size = new size) and record.patch.state.phase says done.
	RAM: the header's bytes only until the header is read; then the applier (its work buffer, written to flash
	as it is: the slot writer has no scratch) and the decompressor's window.
*/

import type { Digest, FlashSlot, RunningImage } from "../platform/ports";
import { Result, type ResultCode } from "../agent/firmware-object";
import { checkImage } from "../agent/image";
import type { DownloadRecord } from "../agent/record";
import { SlotWriter } from "../agent/slot-writer";
import { Phase, SequentialApply, copyApplyState, emptyApplyState } from "./bsdiff-apply";
import { Crle } from "./crle";
import { type Decompressor, Stored } from "./decompressor";
import { Heatshrink } from "./heatshrink";
import { Compression, emptyHeader, maxHeaderBytes, readHeader } from "./patch-header";

export interface PatchPorts {
	running: RunningImage;
	slot: FlashSlot;
	digest: Digest;
	chipId: number;
}

export type PatchFailure = { result: ResultCode; reason: string };

/** The decompressor a patch's header names (compression none, crle or heatshrink). */
export function decompressorFor(header: { compression: number; windowBits: number; lookaheadBits: number }): Decompressor {
	if (header.compression === Compression.heatshrink) return new Heatshrink(header.windowBits, header.lookaheadBits);
	return header.compression === Compression.crle ? new Crle() : new Stored();
}

export class PatchSink {
	#ports: PatchPorts;
	#record: DownloadRecord;
	#checkpointBytes: number;
	#save: () => void;
	/** The header's first bytes, while it is incomplete. */
	#head: Uint8Array | undefined;
	#headLength = 0;
	#applier: SequentialApply | undefined;

	constructor(ports: PatchPorts, record: DownloadRecord, checkpointBytes: number, save: () => void) {
		this.#ports = ports;
		this.#record = record;
		this.#checkpointBytes = checkpointBytes;
		this.#save = save;
	}

	/** Where the transport continues: the patch offset of the last checkpoint (0: from the start). */
	resumeOffset(): number {
		const patch = this.#record.patch;
		if (!patch || patch.state.phase === Phase.done) return patch ? this.#record.totalSize : 0;
		if (!this.#applier) this.#open(0);
		return patch.dataOffset + patch.state.decoder.consumed;
	}

	get done(): boolean {
		return this.#record.patch?.state.phase === Phase.done;
	}

	/** A body from patch offset 0: whatever was written belongs to another package. */
	fresh(): void {
		this.#record.patch = undefined;
		this.#applier = undefined;
		this.#head = undefined;
		this.#headLength = 0;
	}

	/** Applies the next patch bytes; a failure ends the transfer. */
	write(chunk: Uint8Array): PatchFailure | undefined {
		let bytes = chunk;
		if (!this.#applier && !this.done) {
			const head = (this.#head ??= new Uint8Array(maxHeaderBytes));
			const take = Math.min(bytes.length, head.length - this.#headLength);
			head.set(bytes.subarray(0, take), this.#headLength);
			this.#headLength += take;
			const header = emptyHeader();
			const answer = readHeader(head, this.#headLength, header);
			if (answer === "more") return undefined;
			if (answer !== "ok") return { result: Result.unsupportedPackage, reason: answer };
			const oldSize = this.#baseSize(header.framed ? header.baseSha256 : undefined);
			if (typeof oldSize === "string") return { result: Result.unsupportedPackage, reason: oldSize };
			if (header.newSize > this.#ports.slot.byteLength) return { result: Result.notEnoughFlash, reason: `${header.newSize} bytes do not fit the slot` };
			const record = this.#record, { compression, windowBits, lookaheadBits, newSize, dataOffset } = header;
			record.patch = { compression, windowBits, lookaheadBits, newSize, dataOffset, patchSize: record.totalSize, oldSize, state: emptyApplyState() };
			this.#open(newSize);
			bytes = head.subarray(dataOffset, this.#headLength);
			this.#head = undefined;
			const rest = chunk.subarray(take);
			const failure = this.#apply(bytes);
			return failure ?? this.#apply(rest);
		}
		return this.#apply(bytes);
	}

	/** The package ended: a failure unless the new image is complete. */
	finish(): PatchFailure | undefined {
		if (this.done) return undefined;
		return { result: Result.integrityFailure, reason: "patch ended before the image was complete" };
	}

	#apply(bytes: Uint8Array): PatchFailure | undefined {
		const applier = this.#applier, record = this.#record;
		// The patch is done and its applier let go: any more is data past its end.
		if (!applier) return bytes.length ? { result: Result.integrityFailure, reason: "patch data after the end" } : undefined;
		try {
			applier.write(bytes);
		}
		catch (error) {
			return { result: Result.integrityFailure, reason: (error as Error).message };
		}
		if (applier.done && record.patch!.state.phase !== Phase.done) {
			record.patch!.state.phase = Phase.done;
			record.totalSize = record.committed = record.patch!.newSize;
			this.#save();
			// The verify that follows needs none of it: the work buffer and the window go.
			this.#applier = undefined;
		}
		return undefined;
	}

	/** The applier, fresh (newSize) or from the record's checkpoint (0). */
	#open(newSize: number): void {
		const record = this.#record, patch = record.patch!, { slot, running } = this.#ports;
		const resumeAt = newSize ? 0 : patch.state.newOffset;
		const writer = new SlotWriter(slot, 0, (sector) => (sector + 1) * slot.sectorSize <= resumeAt);
		writer.begin(resumeAt, newSize !== 0, patch.newSize);
		this.#applier = new SequentialApply({ running, slot, writer }, decompressorFor(patch), patch.newSize, patch.oldSize, this.#checkpointBytes, (state) => {
			copyApplyState(state, patch.state);
			record.committed = patch.dataOffset + state.decoder.consumed;
			this.#save();
		});
		if (!newSize) this.#applier.resume(patch.state);
	}

	/**
		Bytes of the running image the patch may read: the running image's length (a patch that reads past it is
		for another base and fails there). With a framing, a reason unless the running image is the named base.
		A raw patch names no base: one for another base is caught by the new image's check at the end (5).
	*/
	#baseSize(sha256: Uint8Array | undefined): number | string {
		const { running, digest, chipId } = this.#ports;
		const base = { byteLength: running.byteLength, sectorSize: 4096, blockSize: 4096, erase() {}, eraseBlock() {}, write() {}, readInto: running.readInto.bind(running) };
		const check = checkImage(base, digest, chipId, new Uint8Array(4096));
		if (!sha256) return check.ok ? check.imageLength : running.byteLength;
		if (!check.ok || !check.hashed) return "patch base check: the running image carries no sha-256";
		const appended = new Uint8Array(32);
		running.readInto(check.imageLength - 32, 32, appended);
		for (let i = 0; i < 32; i++) if (appended[i] !== sha256[i]) return "patch is for another base image";
		return check.imageLength;
	}
}
