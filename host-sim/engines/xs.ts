/*
	The real XS engine: the device bundle in an xsnap worker (Moddable's XS, from @agoric/xsnap), one worker
	per power-on. Moddable's synchronous module calls cross to the board through XS's synchronous
	issueCommand; a power cut or a restart kills the worker in the middle of the call that caused it.

	Wire format, both ways over xsnap's netstrings: u32 LE length of a JSON text, the JSON, then raw bytes.
	Commands are [[event, byte count], …]; the device's requests are [op, args, deferred, byte count], answered
	{value, lastEvent} / {error, name, lastEvent} with value "$bytes" meaning the raw bytes; a command's reply may
	end with ["$deferred", [], deferred, -1].

	Each crossing costs two process switches (some 50 µs here), so there are as few as the board allows:
	- Calls whose answer the device never uses and that only a power cut can fail (digest.write, report.progress,
	  log, flash.write and ota.eraseNext, whose arguments the flash and FFI modules check first, and
	  preference.replaceBuffer, a set the preference module knows has room: `deferred`) do not cross on their own.
	  They ride, in order and with copies of their bytes, with the next call that needs an answer or in the reply
	  that ends the command. The board sees the same calls in the same order; a cut at one of them stops the device
	  at its next crossing, and nothing it did in between reaches the board.
	- A command carries, after the event the run loop took, the events the board already has next
	  (Board.upcomingEvents). The device begins each when the one before returns and marks the place among its
	  deferred calls ("$next"), where the board takes it from its queue; the reply to every crossing says how far the
	  board still has them next (a timer set or a socket closed ends it there). The device sees the same events in
	  the same order at the same virtual times as one command each would give it.
*/

import { createRequire } from "node:module";
import * as path from "node:path";
import type { Board, DeviceEvent, Received } from "../board/board";
import { PowerCutError, RestartError } from "../board/board";
import { deviceBundle } from "./bundle";
import { type Engine, type EngineStop, preludeWithTransport, wrapBundle } from "./engine";
import { startXsnapWorker, type XsnapWorker } from "./xsnap-workers";

const require = createRequire(import.meta.url);

/** Events one command carries at most: more than the TCP segments of one 64 KiB socket read (45), or MQTT's blocks. */
const maxEventsAhead = 64;

export function xsnapWorkerPath(): string {
	const root = path.dirname(require.resolve("@agoric/xsnap/package.json"));
	return path.join(root, "xsnap-native/xsnap/build/bin/lin/release/xsnap-worker");
}

const transport = `
	const encoder = new TextEncoder(), decoder = new TextDecoder();
	// Copies are ArrayBuffer slices and one concat: xsnap's XS copies a TypedArray's slice() or set() an element
	// at a time (Moddable's own XS uses memcpy there), which cost more than the rest of the bridge together.
	const bufferOf = (bytes) => bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength
		? bytes.buffer : bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
	// The JSON's length and text, then the parts (ArrayBuffers), in one new ArrayBuffer; a few hundred parts a
	// concat, as each is an argument on XS's stack.
	const pack = (json, parts) => {
		const text = encoder.encode(JSON.stringify(json));
		const head = new ArrayBuffer(4);
		new DataView(head).setUint32(0, text.length, true);
		let message = head.concat(bufferOf(text), ...parts.slice(0, 256));
		for (let at = 256; at < parts.length; at += 256) message = message.concat(...parts.slice(at, at + 256));
		return message;
	};
	const jsonOf = (buffer) => {
		const length = new DataView(buffer).getUint32(0, true);
		return { json: JSON.parse(decoder.decode(new Uint8Array(buffer, 4, length))), offset: 4 + length };
	};
	const unpack = (buffer) => {
		const { json, offset } = jsonOf(buffer);
		return { json, data: buffer.byteLength > offset ? buffer.slice(offset) : undefined };
	};
	const deferrable = new Set(["digest.write", "report.progress", "log", "flash.write", "ota.eraseNext", "preference.replaceBuffer"]);
	let deferred = [], deferredBytes = [];
	// The last event of the command the device may still begin: the board lowers it when the device changes what
	// would come next.
	let lastEvent = 0;
	const bytesOf = (data) => data === undefined ? undefined : ArrayBuffer.isView(data)
		? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : new Uint8Array(data);
	const cross = (op, args, data) => {
		const bytes = bytesOf(data);
		const request = pack([op, args, deferred, bytes ? bytes.length : -1], bytes ? [...deferredBytes, bufferOf(bytes)] : deferredBytes);
		deferred = [];
		deferredBytes = [];
		const reply = unpack(issueCommand(request));
		if (reply.json.lastEvent !== undefined) lastEvent = Math.min(lastEvent, reply.json.lastEvent);
		return reply;
	};
	// Per fragment, the device defers a flash write at least: that path allocates only the call and its copy.
	const noAnswer = { value: undefined }, next = ["$next", [], -1];
	const rawHost = (op, args, data) => {
		if (deferrable.has(op)) {
			if (data === undefined) deferred.push([op, args, -1]);
			else {
				const copy = ArrayBuffer.isView(data) ? data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) : data.slice(0);
				deferred.push([op, args, copy.byteLength]);
				deferredBytes.push(copy);
			}
			return noAnswer;
		}
		const { json, data: bytes } = cross(op, args, data);
		if (json.value === "$bytes") json.value = bytes || new ArrayBuffer(0);
		return json;
	};
	// What is still deferred at the end of the command leaves in its reply.
	globalThis.takeDeferred = () => {
		if (!deferred.length) return undefined;
		const message = pack(["$deferred", [], deferred, -1], deferredBytes);
		deferred = [];
		deferredBytes = [];
		return message;
	};
	// A command is the events [event, byte count] the board has, their bytes after them. The first is the device's
	// now; each next one it begins while the board still has it next, telling the board with "$next".
	globalThis.handleCommand = (buffer) => {
		if (buffer.byteLength === 0) return void gc();
		let { json: events, offset } = jsonOf(buffer);
		lastEvent = events.length - 1;
		for (let index = 0; index < events.length && index <= lastEvent; index++) {
			const event = events[index][0], length = events[index][1];
			if (index) deferred.push(next);
			globalThis.deliverToDevice(event, length < 0 ? undefined : buffer.slice(offset, offset + length));
			if (length > 0) offset += length;
		}
		return globalThis.takeDeferred();
	};
`;

/** A call sent without waiting for its answer: op, arguments, count of its bytes (-1: none). */
type DeferredCall = [string, unknown[], number];

const [question, slash, comma] = ["?", "/", ","].map((text) => Buffer.from(text));

/** A message in parts, which #send writes in one system call: the JSON's length and text, then the bytes. */
function pack(json: unknown, ...data: Uint8Array[]): Uint8Array[] {
	const text = JSON.stringify(json);
	const head = Buffer.allocUnsafe(4 + Buffer.byteLength(text));
	head.writeUInt32LE(head.length - 4, 0);
	head.write(text, 4);
	return [head, ...data];
}

function unpack(buffer: Buffer): { json: any; data: Uint8Array | undefined } {
	const length = buffer.readUInt32LE(0);
	const json = JSON.parse(buffer.subarray(4, 4 + length).toString());
	// A plain Uint8Array over the message, not a Buffer: the board may slice() it, which must copy.
	const data = buffer.length > 4 + length ? new Uint8Array(buffer.buffer, buffer.byteOffset + 4 + length, buffer.length - 4 - length) : undefined;
	return { json, data };
}

export class XsEngine implements Engine {
	heapSlots: number | undefined;
	readonly #heapAfterGc: boolean;
	#worker: XsnapWorker | undefined;
	#chunks: Buffer[] = [];
	#received = 0;
	/** Bytes the netstring at the front needs, once its length is known. */
	#wanted = 0;
	#waiting: ((message: Buffer | undefined) => void) | undefined;
	#messages: Buffer[] = [];
	#board: Board | undefined;
	#stop: EngineStop;
	/** Events sent with the current command's first, while the board still has them next. */
	#ahead: readonly Received[] = [];
	/** How many of #ahead the device has begun. */
	#begun = 0;

	readonly #entry: string | undefined;

	/** `entry`: the firmware's entry module (deviceBundle's), device-entry.ts by default. */
	constructor(options: { heapAfterGc?: boolean; entry?: string } = {}) {
		this.#heapAfterGc = options.heapAfterGc ?? false;
		this.#entry = options.entry;
	}

	async boot(board: Board): Promise<EngineStop> {
		this.#board = board;
		// Not in this process's group (xsnap-workers.ts): a Ctrl-C reaches the run loop, which shuts the device down
		// in order through this worker.
		const worker = this.#worker = await startXsnapWorker(xsnapWorkerPath(), ["xs-ota-device"]);
		worker.toWorker.on("error", () => {});
		worker.fromWorker.on("data", (chunk: Buffer) => this.#receive(chunk));
		worker.fromWorker.on("end", () => this.#deliverMessage(undefined));
		await this.#command([Buffer.from("e" + preludeWithTransport(transport))]);
		if (this.#stop) return this.#stop;
		return this.#command([Buffer.from(`e${wrapBundle(deviceBundle(this.#entry))}\ntakeDeferred();`)]);
	}

	async deliver(first: DeviceEvent): Promise<EngineStop> {
		// Heap measured per event: then one event a command.
		this.#ahead = this.#heapAfterGc ? [] : this.#board!.upcomingEvents(maxEventsAhead);
		this.#begun = 0;
		const events = [first, ...this.#ahead];
		const bytes = events.flatMap(({ data }) => (data ? [data] : []));
		const stop = await this.#command([question, ...pack(events.map(({ event, data }) => [event, data ? data.length : -1]), ...bytes)]);
		this.#ahead = [];
		// XS collects only when its heap runs out, so the meter mostly counts garbage; gc() first leaves the live
		// slots. An empty command, not an "e" script: each evaluated script keeps one slot for good.
		if (!stop && this.#heapAfterGc) return this.#command([question]);
		return stop;
	}

	/** Sends one command and serves XS's issueCommand calls until its reply. */
	async #command(message: Uint8Array[]): Promise<EngineStop> {
		if (this.#stop) return this.#stop;
		this.#send(message);
		for (;;) {
			const reply = await this.#next();
			if (reply === undefined) {
				if (!this.#stop) throw new Error("xs engine exited");
				return this.#stop;
			}
			const kind = String.fromCharCode(reply[0]);
			if (kind === "?") {
				this.#serve(reply.subarray(1));
				if (this.#stop) {
					this.#kill();
					return this.#stop;
				}
				continue;
			}
			if (kind === ".") {
				const separator = reply.indexOf(1);
				if (separator < 0) return undefined;
				const meter = JSON.parse(reply.subarray(1, separator).toString());
				this.heapSlots = meter.currentHeapCount ?? undefined;
				if (separator + 1 < reply.length) {
					const { json, data } = unpack(reply.subarray(separator + 1));
					this.#runDeferred(json[2], data);
					if (this.#stop) this.#kill();
				}
				return this.#stop;
			}
			if (kind === "!") throw new Error(`xs: ${reply.subarray(1).toString()}`);
			throw new Error(`xs: unexpected reply ${kind}`);
		}
	}

	#serve(request: Buffer): void {
		const { json, data } = unpack(request);
		const [op, args, deferred, length] = json as [string, unknown[], DeferredCall[], number];
		const offset = this.#runDeferred(deferred, data);
		if (this.#stop) return;
		let answer: { value?: unknown; error?: string; name?: string; lastEvent?: number }, bytes: Uint8Array | undefined;
		try {
			const value = this.#board!.call(op, args, length < 0 ? undefined : data!.subarray(offset, offset + length));
			if (value instanceof Uint8Array) [answer, bytes] = [{ value: "$bytes" }, value];
			else answer = { value: value ?? null };
		}
		catch (error) {
			if (error instanceof PowerCutError) { this.#stop = "cut"; return; }
			if (error instanceof RestartError) { this.#stop = "restart"; return; }
			answer = { error: (error as Error).message, name: (error as Error).name };
		}
		if (this.#ahead.length) answer.lastEvent = this.#stillAhead();
		this.#send([slash, ...(bytes ? pack(answer, bytes) : pack(answer))]);
	}

	/**
		Makes the calls the device did not wait for, in order, with their bytes from the start of `data`; returns
		where the bytes they used end. Only a power cut may stop them: anything else would reach the device too late.
	*/
	#runDeferred(calls: DeferredCall[], data: Uint8Array | undefined): number {
		let offset = 0;
		for (const [op, args, length] of calls) {
			if (op === "$next") {
				this.#board!.takeUpcoming(this.#ahead[this.#begun++]);
				continue;
			}
			try {
				this.#board!.call(op, args, length < 0 ? undefined : data!.subarray(offset, offset + length));
			}
			catch (error) {
				if (error instanceof PowerCutError) { this.#stop = "cut"; break; }
				throw new Error(`xs: ${op}, sent without waiting for its answer, failed: ${(error as Error).message}`);
			}
			if (length > 0) offset += length;
		}
		return offset;
	}

	/**
		The last event of the command the device may still begin, after it called the board: the board may now have
		something else next (a timer it set, a socket it closed), and then what follows it is not sent.
	*/
	#stillAhead(): number {
		const remaining = this.#ahead.slice(this.#begun);
		const upcoming = this.#board!.upcomingEvents(remaining.length);
		let same = 0;
		while (same < upcoming.length && upcoming[same] === remaining[same]) same++;
		return this.#begun + same;
	}

	/** One netstring, its parts gathered by one system call (corked writes), not copied together. */
	#send(parts: Uint8Array[]): void {
		const toXs = this.#worker!.toWorker;
		let length = 0;
		for (const part of parts) length += part.length;
		toXs.cork();
		toXs.write(`${length}:`);
		for (const part of parts) toXs.write(part);
		toXs.write(comma);
		toXs.uncork();
	}

	/** Cuts netstrings out of what the worker writes; a long one is joined once, when all of it is here. */
	#receive(chunk: Buffer): void {
		this.#chunks.push(chunk);
		this.#received += chunk.length;
		for (;;) {
			if (this.#chunks.length > 1 && (this.#chunks[0].indexOf(0x3a) < 0 || this.#received >= this.#wanted)) {
				this.#chunks = [Buffer.concat(this.#chunks)];
			}
			const pending = this.#chunks[0];
			const colon = pending.indexOf(0x3a);
			if (colon < 0) return;
			const length = Number(pending.subarray(0, colon).toString());
			this.#wanted = colon + length + 2;
			if (this.#received < this.#wanted) return;
			if (this.#chunks.length > 1) continue;
			const rest = pending.subarray(this.#wanted);
			this.#chunks = rest.length ? [rest] : [];
			this.#received = rest.length;
			this.#wanted = 0;
			this.#deliverMessage(pending.subarray(colon + 1, colon + 1 + length));
			if (!this.#chunks.length) return;
		}
	}

	#deliverMessage(message: Buffer | undefined): void {
		if (this.#waiting) {
			const waiting = this.#waiting;
			this.#waiting = undefined;
			waiting(message);
		}
		else if (message) this.#messages.push(message);
		else this.#messages.push(Buffer.alloc(0));
	}

	#next(): Promise<Buffer | undefined> {
		const queued = this.#messages.shift();
		if (queued) return Promise.resolve(queued.length ? queued : undefined);
		return new Promise((resolve) => { this.#waiting = resolve; });
	}

	#kill(): void {
		this.#worker?.kill();
	}

	dispose(): void {
		this.#worker?.kill();
		this.#worker = undefined;
	}
}
