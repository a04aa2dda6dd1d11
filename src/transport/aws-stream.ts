/*
	An AWS IoT MQTT file stream → inactive slot, resumable across power cuts.

	The file is a row of blocks (blockSize bytes, the last one shorter). The download asks for a window of
	missing blocks at a time (offset o, count n, bitmap b of the wanted ones, at most 128 KB per request) and
	accepts blocks in any order, late or twice: a block already held is ignored. When nothing arrives for
	blockTimeoutMs the missing blocks of the window are asked again; after maxSilentRequests such requests in
	a row the download gives up with result 4 and keeps what it has.

	Flash discipline: the erase plan (agent/erase-plan.ts) erases the sectors a block touches the first time a
	block touches them in this power-on, the whole 64 KiB flash block at once when nothing in it is committed.
	The record's bitmap holds only blocks whose whole sectors are written, so after a cut every block of a
	partly written sector is fetched again (after its sector is erased once more), and nothing committed is
	ever erased: a flash block that holds committed blocks is erased sector by sector, its committed ones left.
	The record is saved whenever checkpointBytes more bytes are committed.
*/

import type { Clock, FlashSlot, Logger } from "../platform/ports";
import { Result } from "../agent/firmware-object";
import type { DownloadListener } from "./transfer";
import { ErasePlan } from "../agent/erase-plan";
import type { DownloadRecord } from "../agent/record";
import { decodeBase64Bytes, hexEncode } from "../lib/base64";
import { cborSize, decodeCbor, encodeCbor } from "../lib/cbor";
import { nestedWithin } from "../lib/json";
import { utf8Read } from "../lib/utf8";

export interface StreamOptions {
	format: "json" | "cbor";
	/** Bytes per request (AWS allows at most 128 KB). */
	requestBytes: number;
	blockTimeoutMs: number;
	maxSilentRequests: number;
	checkpointBytes: number;
}

export const defaultStreamOptions: StreamOptions = {
	format: "json",
	requestBytes: 128 * 1024,
	blockTimeoutMs: 5000,
	maxSilentRequests: 8,
	checkpointBytes: 16384,
};

/** The MQTT connection as the stream sees it: publish fails (false) while disconnected. */
export interface StreamLink {
	publish(topic: string, payload: string | ArrayBuffer): boolean;
}

export class StreamDownload {
	#slot: FlashSlot;
	#clock: Clock;
	#log: Logger;
	#options: StreamOptions;
	#record: DownloadRecord;
	#link: StreamLink;
	#listener: DownloadListener;
	#thing: string;
	#blockCount: number;
	/** Blocks held on flash in this power-on (the record's bitmap is the committed subset). */
	#held: Uint8Array;
	#erasing: ErasePlan;
	#block: Uint8Array<ArrayBuffer>;
	#windowStart = 0;
	#windowEnd = 0;
	#silent = 0;
	#arrivedSinceCheck = 0;
	#uncommittedBytes = 0;
	#heldCount = 0;
	#timer: unknown;
	#finished = false;
	readonly dataTopic: string;
	readonly rejectedTopic: string;
	#requestTopic: string;

	constructor(ports: { slot: FlashSlot; clock: Clock; log: Logger }, options: StreamOptions, record: DownloadRecord, thing: string, link: StreamLink, listener: DownloadListener) {
		this.#slot = ports.slot;
		this.#clock = ports.clock;
		this.#log = ports.log;
		this.#options = options;
		this.#record = record;
		this.#thing = thing;
		this.#link = link;
		this.#listener = listener;
		const blockSize = record.blockSize;
		this.#blockCount = Math.ceil(record.totalSize / blockSize);
		const bitmapBytes = Math.ceil(this.#blockCount / 8);
		if (!record.blocks || record.blocks.length !== bitmapBytes) record.blocks = new Uint8Array(bitmapBytes);
		this.#held = record.blocks.slice();
		for (let i = 0; i < this.#blockCount; i++)
			if (this.#has(this.#held, i)) this.#heldCount++;
		this.#erasing = new ErasePlan(ports.slot, (sector) => this.#keeps(sector));
		this.#erasing.setImageSize(record.totalSize);
		this.#block = new Uint8Array(blockSize);
		const base = `$aws/things/${thing}/streams/${record.streamId}`;
		this.dataTopic = `${base}/data/${options.format}`;
		this.rejectedTopic = `${base}/rejected/${options.format}`;
		this.#requestTopic = `${base}/get/${options.format}`;
	}

	start(): void {
		if (this.#heldCount === this.#blockCount) return this.#finish();
		this.#timer = this.#clock.setTimeout(() => this.#check(), this.#options.blockTimeoutMs);
		this.#nextWindow();
	}

	stop(): void {
		this.#finished = true;
		if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
		this.#timer = undefined;
	}

	/** The bitmap already names every block whose sectors are whole on flash: saving it keeps them all. */
	suspend(): void {
		this.stop();
		this.#listener.save();
	}

	/** The broker is unreachable for good (a refused secure connection): fail with 4, keeping what is on flash. */
	abandon(reason: string): void {
		if (!this.#finished) this.#fail(Result.connectionLost, reason);
	}

	/** After a (re)connect and subscribe: ask again for what the window still misses. */
	connected(): void {
		if (!this.#finished) this.#request();
	}

	/** Routes a stream message; returns false for topics that are not this stream's. */
	message(topic: string, payload: ArrayBuffer): boolean {
		if (topic === this.dataTopic) {
			if (!this.#finished) this.#data(payload);
			return true;
		}
		if (topic === this.rejectedTopic) {
			if (!this.#finished) this.#rejected(payload);
			return true;
		}
		return false;
	}

	#data(payload: ArrayBuffer): void {
		const block = this.#block;
		let fileId: unknown, index: unknown, length: number;
		try {
			if (this.#options.format === "cbor") {
				const message = decodeCbor(new Uint8Array(payload)) as { f?: unknown; i?: unknown; p?: unknown };
				fileId = message.f;
				index = message.i;
				const bytes = message.p;
				if (!(bytes instanceof Uint8Array) || bytes.length > block.length) throw new Error("bad block");
				block.set(bytes);
				length = bytes.length;
			}
			else {
				// The base64 payload is decoded where it lies in the message; only the small rest becomes a string
				// for JSON.parse (on XS, long strings cost time quadratic in their length).
				const bytes = new Uint8Array(payload);
				const p = findPayload(bytes);
				if (!p || p.end - p.start > ((block.length + 2) / 3) * 4 + 4) throw new Error("bad block");
				const message = parseJson(bytes, p) as { f?: unknown; i?: unknown; p?: unknown };
				fileId = message.f;
				index = message.i;
				if (message.p !== "") throw new Error("bad block");
				length = decodeBase64Bytes(bytes, p.start, p.end, block, 0);
			}
		}
		catch (error) {
			this.#log(`stream block ignored: ${(error as Error).message}`);
			return;
		}
		const record = this.#record;
		if (fileId !== record.fileId || typeof index !== "number" || !Number.isInteger(index) || index < 0 || index >= this.#blockCount) return;
		const start = index * record.blockSize;
		if (length !== Math.min(record.blockSize, record.totalSize - start)) {
			this.#log(`stream block ${index} has ${length} bytes`);
			return;
		}
		if (this.#has(this.#held, index)) return;
		this.#write(start, length);
		this.#set(this.#held, index);
		this.#heldCount++;
		this.#arrivedSinceCheck++;
		this.#commitSectorsOf(index);
		if (this.#uncommittedBytes >= this.#options.checkpointBytes) {
			this.#uncommittedBytes = 0;
			this.#listener.save();
			this.#listener.progress(this.#committedBytes(), record.totalSize);
		}
		if (this.#heldCount === this.#blockCount) return this.#finish();
		if (this.#windowComplete()) this.#nextWindow();
	}

	#write(start: number, length: number): void {
		const slot = this.#slot;
		if (start + length > slot.byteLength) throw new Error("block past the slot");
		this.#erasing.prepare(start, start + length);
		slot.write(start, length, this.#block.buffer);
	}

	/** Whether flash sector `sector` holds bytes of a committed block. */
	#keeps(sector: number): boolean {
		const record = this.#record, blocks = record.blocks!, sectorSize = this.#slot.sectorSize, blockSize = record.blockSize;
		const last = Math.min(this.#blockCount, Math.ceil((sector + 1) * sectorSize / blockSize));
		for (let i = Math.floor(sector * sectorSize / blockSize); i < last; i++)
			if (this.#has(blocks, i)) return true;
		return false;
	}

	/** Marks committed every block of each sector that `index` touches once all of that sector's blocks are held. */
	#commitSectorsOf(index: number): void {
		const record = this.#record, blocks = record.blocks!, sectorSize = this.#slot.sectorSize, blockSize = record.blockSize;
		const start = index * blockSize, end = Math.min(start + blockSize, record.totalSize);
		const first = Math.floor(Math.floor(start / sectorSize) * sectorSize / blockSize);
		const last = Math.min(this.#blockCount, Math.ceil(Math.ceil(end / sectorSize) * sectorSize / blockSize));
		for (let i = first; i < last; i++)
			if (!this.#has(this.#held, i)) return;
		for (let i = first; i < last; i++) {
			if (this.#has(blocks, i)) continue;
			this.#set(blocks, i);
			this.#uncommittedBytes += Math.min(blockSize, record.totalSize - i * blockSize);
		}
	}

	#rejected(payload: ArrayBuffer): void {
		let code = "unknown";
		try {
			const message = (this.#options.format === "cbor" ? decodeCbor(new Uint8Array(payload)) : parseJson(new Uint8Array(payload))) as { o?: unknown; code?: unknown };
			// AWS sends the code as "o"; older services as "code".
			const found = typeof message.o === "string" ? message.o : message.code;
			if (typeof found === "string") code = found;
		}
		catch {
			// An unreadable rejection is still a rejection.
		}
		this.#log(`stream request rejected: ${code}`);
		this.#fail(Result.invalidUri, `stream rejected the request: ${code}`);
	}

	#nextWindow(): void {
		let first = this.#windowEnd < this.#blockCount ? this.#windowEnd : 0;
		while (first < this.#blockCount && this.#has(this.#held, first)) first++;
		if (first === this.#blockCount) {
			first = 0;
			while (first < this.#blockCount && this.#has(this.#held, first)) first++;
		}
		const perRequest = Math.max(1, Math.floor(this.#options.requestBytes / this.#record.blockSize));
		this.#windowStart = first;
		this.#windowEnd = Math.min(this.#blockCount, first + perRequest);
		this.#request();
	}

	#windowComplete(): boolean {
		for (let i = this.#windowStart; i < this.#windowEnd; i++)
			if (!this.#has(this.#held, i)) return false;
		return true;
	}

	#request(): void {
		const record = this.#record;
		const o = this.#windowStart, n = this.#windowEnd - o;
		const wanted = new Uint8Array(Math.ceil(n / 8));
		for (let i = 0; i < n; i++)
			if (!this.#has(this.#held, o + i)) wanted[i >> 3] |= 1 << (i & 7);
		const clientToken = `${this.#thing.slice(0, 48)}-${record.updateId}`;
		const request = { c: clientToken, f: record.fileId, l: record.blockSize, o, n, b: wanted };
		let payload: string | ArrayBuffer;
		if (this.#options.format === "cbor") {
			const bytes = new Uint8Array(new ArrayBuffer(cborSize(request)));
			encodeCbor(request, bytes);
			payload = bytes.buffer;
		}
		else payload = JSON.stringify({ ...request, b: hexEncode(wanted, 0, wanted.length) });
		this.#link.publish(this.#requestTopic, payload);
	}

	#check(): void {
		if (this.#finished) return;
		if (this.#arrivedSinceCheck === 0) {
			if (++this.#silent >= this.#options.maxSilentRequests)
				return this.#fail(Result.connectionLost, `no blocks after ${this.#silent} requests`);
			this.#log(`no blocks for ${this.#options.blockTimeoutMs} ms: asking again`);
			this.#request();
		}
		else this.#silent = 0;
		this.#arrivedSinceCheck = 0;
		this.#timer = this.#clock.setTimeout(() => this.#check(), this.#options.blockTimeoutMs);
	}

	#finish(): void {
		const record = this.#record;
		this.stop();
		record.committed = record.totalSize;
		this.#listener.progress(record.totalSize, record.totalSize);
		this.#listener.done({ ok: true });
	}

	#fail(result: 4 | 7, reason: string): void {
		this.stop();
		this.#listener.done({ ok: false, result, reason });
	}

	#committedBytes(): number {
		const record = this.#record, blocks = record.blocks!;
		let bytes = 0;
		for (let i = 0; i < this.#blockCount; i++)
			if (this.#has(blocks, i)) bytes += Math.min(record.blockSize, record.totalSize - i * record.blockSize);
		return bytes;
	}

	#has(bits: Uint8Array, index: number): boolean {
		return (bits[index >> 3] & (1 << (index & 7))) !== 0;
	}

	#set(bits: Uint8Array, index: number): void {
		bits[index >> 3] |= 1 << (index & 7);
	}
}

// Stream messages are flat maps: anything nested deeper is refused before XS's recursive JSON.parse meets it.
/** Parses a stream message's JSON, leaving out the bytes [skip.start, skip.end) (the payload's text). */
function parseJson(bytes: Uint8Array, skip = { start: bytes.length, end: bytes.length }): unknown {
	const text = utf8Read(bytes, 0, skip.start) + utf8Read(bytes, skip.end, bytes.length);
	if (!nestedWithin(text, 4)) throw new Error("json nested too deep");
	return JSON.parse(text);
}

/** Where the text of the first "p" string sits in a JSON message's bytes; undefined when it is not plain base64. */
function findPayload(bytes: Uint8Array): { start: number; end: number } | undefined {
	const quote = 0x22, colon = 0x3a, backslash = 0x5c;
	for (let i = 0; i + 2 < bytes.length; i++) {
		if (bytes[i] !== quote || bytes[i + 1] !== 0x70 || bytes[i + 2] !== quote || (i > 0 && bytes[i - 1] === backslash)) continue;
		let at = skipSpace(bytes, i + 3);
		if (bytes[at] !== colon) continue;
		at = skipSpace(bytes, at + 1);
		if (bytes[at] !== quote) return undefined;
		const start = at + 1;
		for (let end = start; end < bytes.length; end++) {
			if (bytes[end] === quote) return { start, end };
			if (bytes[end] === backslash) return undefined;
		}
		return undefined;
	}
	return undefined;
}

function skipSpace(bytes: Uint8Array, at: number): number {
	while (at < bytes.length && (bytes[at] === 0x20 || bytes[at] === 0x09 || bytes[at] === 0x0a || bytes[at] === 0x0d)) at++;
	return at;
}
