/*
	A CoAP pull (coap://host/path, or coaps:// over the DTLS endpoint the ports give): the package is read block by block with Block2 (RFC 7959), each block a
	confirmable GET that the endpoint retransmits on its own. The record's checkpoint names a block boundary
	and the ETag option's value, so after a power cut the pull asks for the checkpoint's block and resumes only
	when the server still sends the same representation (resume.ts decides).

	resolve host → ask block at the checkpoint → decide (first answer of a run)
	  resume / fresh → write each block, ask the next; checkpoint every checkpointBytes → last block (M=0) → done
	  restart  → ask block 0 without trusting the checkpoint (twice at most per run, then retry later)
	  retry / timeout / reset → wait (backoff, 5.03's Max-Age believed) → ask again; maxAttempts in a row → 4
	  dtls failure (bad psk, unknown identity…) → the same wait; maxTlsAttempts in a row → 7, with its reason
	  fail → done(7 or 9)
	A block of another ETag or offset than asked, mid-run, means the file changed under the pull: restart.
*/

import { type CoapEndpoint, type Peer } from "../coap/endpoint";
import { Code, type CoapOption, type Message, Option, blockBytes, firstOption, parseBlock, stringBytes, uintBytes, uintOption } from "../coap/message";
import { hexEncode } from "../lib/base64";
import { Checkpoints, type DownloadListener, type DownloadOptions, type Transfer, retryDelay } from "./transfer";
import { Result, type ResultCode } from "../agent/firmware-object";
import type { DownloadRecord } from "../agent/record";
import { decideBlock } from "../agent/resume";
import { isPermanentDtlsFailure } from "../lib/tls-failure";
import { SlotWriter } from "../agent/slot-writer";
import type { Clock, FlashSlot, Logger, UdpOpener, Url } from "../platform/ports";
import { PatchSink, type PatchPorts } from "../delta/patch-sink";
import { isPatchStart } from "../delta/patch-header";

export interface CoapPullPorts {
	coap: CoapEndpoint;
	udp: UdpOpener;
	slot: FlashSlot;
	clock: Clock;
	log: Logger;
	/** Where a package that is a patch is applied from; without it every package is an image. */
	patch?: PatchPorts;
}

/** Block size exponent asked for: 1024-byte blocks, the largest RFC 7959 has. */
export const preferredSzx = 6;

export class CoapPull implements Transfer {
	#ports: CoapPullPorts;
	#options: DownloadOptions;
	#record: DownloadRecord;
	#listener: DownloadListener;
	#url: Url;
	#writer: SlotWriter;
	#peer: Peer | undefined;
	/** Uri-Path and Uri-Query of the package, built once: each block request adds only its Block2. */
	#pathOptions: CoapOption[] | string;
	#cancel: (() => void) | undefined;
	#waitTimer: unknown;
	/** Bytes known on flash: where the next run starts (a block boundary). */
	#known = 0;
	/** Package bytes received in this run: the next block's offset. */
	#offset = 0;
	/** Bytes at the start of this run the patch sink already has. */
	#skip = 0;
	#patch: PatchSink | undefined;
	#patchMode = false;
	/** The next payload byte is the package's first: it decides whether the package is a patch. */
	#sniff = false;
	#szx = preferredSzx;
	/** Whether the current run's first answer was decided and blocks are being written. */
	#writing = false;
	#failures = 0;
	#dtlsFailures = 0;
	#restarts = 0;
	#checkpoints: Checkpoints;
	#finished = false;

	constructor(ports: CoapPullPorts, options: DownloadOptions, record: DownloadRecord, url: Url, listener: DownloadListener) {
		this.#ports = ports;
		this.#options = options;
		this.#record = record;
		this.#url = url;
		this.#listener = listener;
		this.#pathOptions = requestOptions(url);
		const sector = ports.slot.sectorSize;
		this.#writer = new SlotWriter(ports.slot, 1 << (preferredSzx + 4), (index) => (index + 1) * sector <= record.committed);
		// Only whole sectors of the checkpoint are trusted: the sector at the checkpoint is erased and fetched again.
		this.#known = record.committed - (record.committed % sector);
		this.#checkpoints = new Checkpoints(options.checkpointBytes, this.#known);
		if (ports.patch) this.#patch = new PatchSink(ports.patch, record, options.checkpointBytes, () => listener.save());
		this.#patchMode = record.patch !== undefined && this.#patch !== undefined;
	}

	start(): void {
		if (this.#patchMode && this.#patch!.done) return this.#done();
		const host = this.#url.host;
		this.#ports.udp.resolve(host, (address) => {
			if (this.#finished) return;
			if (!address) return this.#transientFailure(`cannot resolve ${host}`, 0);
			this.#peer = { address, port: this.#url.port };
			this.#ask();
		});
	}

	stop(): void {
		this.#finished = true;
		this.#cancel?.();
		this.#cancel = undefined;
		this.#ports.clock.clearTimeout(this.#waitTimer);
	}

	suspend(): void {
		// Everything written belongs to the record's ETag: keep all of it, to the last whole block.
		if (this.#writing && !this.#patchMode && this.#offset > this.#record.committed) this.#record.committed = this.#offset;
		this.stop();
		this.#listener.save();
	}

	/** Asks for the next block of the run (or, at the start of a run, the block at the known offset). */
	#ask(): void {
		const size = 16 << this.#szx;
		if (!this.#writing && this.#patchMode) {
			// A patch continues from its last checkpoint, whatever this power-on applied past it.
			const from = this.#patch!.resumeOffset();
			this.#known = from - (from % size);
			this.#skip = from - this.#known;
		}
		const offset = this.#writing ? this.#offset : this.#known;
		if (typeof this.#pathOptions === "string") return this.#fail(Result.invalidUri, this.#pathOptions);
		const options = this.#pathOptions.concat({ number: Option.block2, value: blockBytes({ num: offset / size, more: false, szx: this.#szx }) });
		if (offset === 0) options.push({ number: Option.size2, value: uintBytes(0) });
		this.#cancel = this.#ports.coap.request(this.#peer!, Code.get, options, undefined, true, (response, error) => {
			this.#cancel = undefined;
			if (this.#finished) return;
			if (!response) {
				// The same server fails the same handshake again: a few tries, then the reason.
				const reason = error?.startsWith("dtls: ") ? error : `coap ${error ?? "no answer"}`;
				this.#dtlsFailures = isPermanentDtlsFailure(reason) ? this.#dtlsFailures + 1 : 0;
				if (this.#dtlsFailures >= this.#options.maxTlsAttempts) return this.#fail(Result.invalidUri, reason);
				return this.#transientFailure(reason, 0);
			}
			this.#dtlsFailures = 0;
			this.#answer(response, offset);
		});
	}

	#answer(response: Message, asked: number): void {
		const option = firstOption(response, Option.block2), parsed = option && parseBlock(option);
		if (option && !parsed) return this.#transientFailure("bad block2 option", 0);
		// Without Block2 the answer is the whole representation: block 0, the last.
		const block = parsed || { num: 0, more: false, szx: this.#szx };
		const size = 16 << block.szx;
		const etagBytes = firstOption(response, Option.etag);
		const etag = etagBytes ? hexEncode(etagBytes, 0, etagBytes.length) : undefined;
		const offset = block.num * size;
		const record = this.#record;
		// Every block but the last is full (RFC 7959 §2.2): a shorter one was cut on the way in (Moddable's
		// lin socket reads at most 1024 bytes of a datagram). Ask again, at the same offset, for smaller blocks.
		if (response.code === Code.content && block.more && response.payload.length !== size) {
			if (block.szx === 0) return this.#transientFailure(`block of ${response.payload.length} bytes, not ${size}`, 0);
			this.#szx = block.szx - 1;
			this.#ports.log(`short block (${response.payload.length} of ${size} bytes): asking for ${16 << this.#szx}-byte blocks`);
			return this.#ask();
		}
		if (!this.#writing) {
			const decision = decideBlock({ committed: this.#known, etag: record.etag, totalSize: record.totalSize }, { code: response.code, etag, offset: asked === offset ? offset : -1 });
			switch (decision.kind) {
				case "retry": return this.#transientFailure(decision.reason, (uintOption(response, Option.maxAge) ?? 0) * 1000);
				case "fail": return this.#fail(decision.result, decision.reason);
				case "restart": return this.#restart(decision.reason);
				case "fresh": {
					const total = uintOption(response, Option.size2) ?? 0;
					if (total > this.#ports.slot.byteLength)
						return this.#fail(Result.notEnoughFlash, `${total} bytes do not fit the ${this.#ports.slot.byteLength} byte slot`);
					// Whatever was written belongs to another package: forget a patch's checkpoint before saving.
					this.#patch?.fresh();
					this.#patchMode = false;
					this.#sniff = true;
					this.#skip = 0;
					record.etag = etag ?? "";
					record.totalSize = total;
					record.committed = 0;
					this.#listener.save();
					this.#writer.begin(0, true, total);
					break;
				}
				case "resume":
					if (!this.#patchMode) this.#writer.begin(this.#known, false, record.totalSize);
					break;
				default:
					return this.#restart("unexpected answer");
			}
			this.#writing = true;
			this.#offset = this.#known;
		}
		else if (response.code !== Code.content || etag !== (record.etag || undefined) || offset !== asked)
			return response.code >= Code.internalServerError
				? this.#transientFailure(`coap block answered ${response.code}`, (uintOption(response, Option.maxAge) ?? 0) * 1000)
				: this.#restart("the file changed during the pull");
		// A server may answer with smaller blocks than asked (RFC 7959 §2.4): ask for its size from now on.
		if (block.szx < this.#szx) this.#szx = block.szx;
		this.#write(response.payload, block.more);
	}

	#write(payload: Uint8Array, more: boolean): void {
		const record = this.#record, end = this.#offset + payload.length;
		const announced = this.#patchMode && record.patch ? record.patch.patchSize : record.totalSize;
		if (announced && end > announced)
			return this.#restart("blocks past the announced size");
		if (this.#sniff && payload.length) {
			this.#sniff = false;
			this.#patchMode = this.#patch !== undefined && isPatchStart(payload[0]);
		}
		this.#offset = end;
		if (this.#patchMode) return this.#writePatch(payload, more);
		if (!this.#writer.write(payload)) return this.#fail(Result.notEnoughFlash, "image larger than the slot");
		this.#known = end;
		const step = this.#checkpoints.advance(record, end);
		if (step === "further") this.#failures = 0;
		if (step !== "none") {
			this.#listener.save();
			this.#listener.progress(end, record.totalSize);
		}
		if (more) return this.#ask();
		if (record.totalSize && end !== record.totalSize) return this.#transientFailure(`blocks ended at ${end} of ${record.totalSize}`, 0);
		if (!record.totalSize) record.totalSize = end;
		this.#done();
	}

	#writePatch(payload: Uint8Array, more: boolean): void {
		const record = this.#record, sink = this.#patch!, committed = record.committed;
		const skip = Math.min(this.#skip, payload.length);
		this.#skip -= skip;
		const failure = sink.write(payload.subarray(skip));
		if (failure) return this.#fail(failure.result, failure.reason);
		if (record.committed !== committed) {
			this.#failures = 0;
			this.#listener.progress(this.#offset, record.patch?.patchSize ?? record.totalSize);
		}
		if (more) return this.#ask();
		const announced = record.patch?.patchSize ?? 0;
		if (announced && this.#offset !== announced) return this.#transientFailure(`blocks ended at ${this.#offset} of ${announced}`, 0);
		const unfinished = sink.finish();
		if (unfinished) return this.#fail(unfinished.result, unfinished.reason);
		this.#done();
	}

	#done(): void {
		const record = this.#record;
		this.#finished = true;
		record.committed = record.totalSize;
		this.#listener.progress(record.totalSize, record.totalSize);
		this.#listener.done({ ok: true });
	}

	#restart(reason: string): void {
		this.#ports.log(`restart: ${reason}`);
		this.#writing = false;
		this.#known = this.#skip = 0;
		// From block 0: the answer decides afresh whether the package is a patch.
		this.#patchMode = false;
		if (++this.#restarts > 2) return this.#transientFailure(reason, 0);
		this.#ask();
	}

	#transientFailure(reason: string, retryAfterMs: number): void {
		if (this.#finished) return;
		this.#writing = false;
		const failures = ++this.#failures;
		this.#record.attempts++;
		if (failures >= this.#options.maxAttempts)
			return this.#fail(Result.connectionLost, `${reason}; gave up after ${failures} attempts`);
		const delay = retryDelay(failures, this.#options, retryAfterMs);
		this.#ports.log(`${reason}; retry in ${delay} ms`);
		this.#restarts = 0;
		this.#waitTimer = this.#ports.clock.setTimeout(() => {
			this.#waitTimer = undefined;
			if (this.#peer) this.#ask();
			else this.start();
		}, delay);
	}

	#fail(result: ResultCode, reason: string): void {
		this.stop();
		this.#listener.done({ ok: false, result, reason });
	}
}

/** Uri-Path and Uri-Query options of a coap:// URL (percent-decoded); a reason when they cannot be. */
function requestOptions(url: Url): CoapOption[] | string {
	const options: CoapOption[] = [];
	const query = url.path.indexOf("?");
	const path = query < 0 ? url.path : url.path.slice(0, query);
	try {
		for (const segment of path.split("/"))
			if (segment) options.push({ number: Option.uriPath, value: stringBytes(decodeURIComponent(segment)) });
		if (query >= 0)
			for (const argument of url.path.slice(query + 1).split("&"))
				if (argument) options.push({ number: Option.uriQuery, value: stringBytes(decodeURIComponent(argument)) });
	}
	catch {
		return "malformed uri";
	}
	return options;
}
