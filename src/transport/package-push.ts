// A pushed package: the server writes the LwM2M Package resource (/5/0/0), block after block (CoAP Block1),
// and each block goes to the slot as it arrives. The device cannot ask for a block again, so a push does not
// survive a cut or a silence: the agent ends it with 4 and the server pushes again from the start. A package
// whose first byte is not an image's is a patch: its blocks go through the patch sink (delta/patch-sink.ts),
// which needs them in order, as Block1 brings them; a push keeps no checkpoint, so the sink saves nothing.

import type { DownloadListener, Transfer } from "./transfer";
import { Result } from "../agent/firmware-object";
import type { DownloadRecord } from "../agent/record";
import { SlotWriter } from "../agent/slot-writer";
import type { Clock, FlashSlot, Logger } from "../platform/ports";
import { PatchSink, type PatchPorts } from "../delta/patch-sink";
import { isPatchStart } from "../delta/patch-header";

export interface PushPorts {
	slot: FlashSlot;
	clock: Clock;
	log: Logger;
	/** Where a package that is a patch is applied from; without it every package is an image. */
	patch?: PatchPorts;
}

export class PackagePush implements Transfer {
	#ports: PushPorts;
	#record: DownloadRecord;
	#listener: DownloadListener;
	#writer: SlotWriter;
	#silenceMs: number;
	#timer: unknown;
	#lastWrite = 0;
	#open = false;
	#received = 0;
	/** Set once the first byte came and said the package is a patch. */
	#patch: PatchSink | undefined;

	constructor(ports: PushPorts, silenceMs: number, blockBytes: number, record: DownloadRecord, listener: DownloadListener) {
		this.#ports = ports;
		this.#silenceMs = silenceMs;
		this.#record = record;
		this.#listener = listener;
		// Nothing of a push is kept: it never resumes.
		this.#writer = new SlotWriter(ports.slot, blockBytes, () => false);
	}

	/** Package bytes taken so far. */
	get offset(): number {
		return this.#received;
	}

	start(): void {
		this.#open = true;
		this.#writer.begin(0, true, this.#record.totalSize);
		this.#watch();
	}

	/** Writes the next block; false when the push is over (it no longer fits the slot, or it was stopped). */
	write(bytes: Uint8Array): boolean {
		if (!this.#open) return false;
		const patch = this.#ports.patch;
		if (this.#received === 0 && bytes.length && patch && isPatchStart(bytes[0]))
			this.#patch = new PatchSink(patch, this.#record, Infinity, () => {});
		if (this.#patch) {
			const failure = this.#patch.write(bytes);
			if (failure) {
				this.#end({ ok: false, ...failure });
				return false;
			}
		}
		else if (!this.#writer.write(bytes)) {
			this.#end({ ok: false, result: Result.notEnoughFlash, reason: "pushed package larger than the slot" });
			return false;
		}
		this.#received += bytes.length;
		this.#lastWrite = this.#ports.clock.ticks();
		this.#listener.progress(this.#received, this.#record.totalSize);
		return true;
	}

	/** The last block arrived: the package is complete. */
	finish(): void {
		if (!this.#open) return;
		const failure = this.#patch?.finish();
		if (failure) return this.#end({ ok: false, ...failure });
		// A patch's sink already names the new image (its size) in the record.
		const record = this.#record;
		if (!this.#patch) record.totalSize = record.committed = this.#writer.offset;
		this.#end({ ok: true });
	}

	refuse(reason: string): void {
		if (this.#open) this.#end({ ok: false, result: Result.unsupportedPackage, reason });
	}

	stop(): void {
		this.#open = false;
		this.#ports.clock.clearTimeout(this.#timer);
	}

	suspend(): void {
		this.stop();
		this.#listener.save();
	}

	#end(outcome: Parameters<DownloadListener["done"]>[0]): void {
		this.stop();
		this.#listener.done(outcome);
	}

	/** A server that stops sending is gone: the push ends with 4 rather than holding Downloading forever. */
	#watch(): void {
		this.#lastWrite = this.#ports.clock.ticks();
		const check = () => {
			if (!this.#open) return;
			const quiet = this.#ports.clock.ticks() - this.#lastWrite;
			if (quiet >= this.#silenceMs) return this.#end({ ok: false, result: Result.connectionLost, reason: `push silent for ${Math.round(quiet / 1000)} s` });
			this.#timer = this.#ports.clock.setTimeout(check, this.#silenceMs - quiet);
		};
		this.#timer = this.#ports.clock.setTimeout(check, this.#silenceMs);
	}
}
