// A pushed package: the server writes the LwM2M Package resource (/5/0/0), block after block (CoAP Block1),
// and each block goes to the slot as it arrives. The device cannot ask for a block again, so a push does not
// survive a cut or a silence: the agent ends it with 4 and the server pushes again from the start.

import type { DownloadListener, Transfer } from "./transfer";
import { Result } from "../agent/firmware-object";
import type { DownloadRecord } from "../agent/record";
import { SlotWriter } from "../agent/slot-writer";
import type { Clock, FlashSlot, Logger } from "../platform/ports";

export interface PushPorts {
	slot: FlashSlot;
	clock: Clock;
	log: Logger;
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

	constructor(ports: PushPorts, silenceMs: number, blockBytes: number, record: DownloadRecord, listener: DownloadListener) {
		this.#ports = ports;
		this.#silenceMs = silenceMs;
		this.#record = record;
		this.#listener = listener;
		// Nothing of a push is kept: it never resumes.
		this.#writer = new SlotWriter(ports.slot, blockBytes, () => false);
	}

	/** Bytes written so far. */
	get offset(): number {
		return this.#writer.offset;
	}

	start(): void {
		this.#open = true;
		this.#writer.begin(0, true, this.#record.totalSize);
		this.#watch();
	}

	/** Writes the next block; false when the push is over (it no longer fits the slot, or it was stopped). */
	write(bytes: Uint8Array): boolean {
		if (!this.#open) return false;
		if (!this.#writer.write(bytes)) {
			this.#end({ ok: false, result: Result.notEnoughFlash, reason: "pushed package larger than the slot" });
			return false;
		}
		this.#lastWrite = this.#ports.clock.ticks();
		this.#listener.progress(this.#writer.offset, this.#record.totalSize);
		return true;
	}

	/** The last block arrived: the package is complete. */
	finish(): void {
		if (!this.#open) return;
		const record = this.#record;
		record.totalSize = record.committed = this.#writer.offset;
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
