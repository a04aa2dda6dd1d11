/*
	The real XS engine: the device bundle in an xsnap worker (Moddable's XS, from @agoric/xsnap), one worker
	per power-on. Moddable's synchronous module calls cross to the board through XS's synchronous
	issueCommand; a power cut or a restart kills the worker in the middle of the call that caused it.

	Wire format, both ways over xsnap's netstrings: u32 LE length of a JSON text, the JSON, then raw bytes.
	Requests are [op, args, deferred, bytes]; replies are {value} / {error, name} with value "$bytes" meaning the
	raw bytes.

	Each crossing costs two process switches, so calls whose answer the device never uses and that cannot fail
	while the board has power (digest.write, report.progress, log: `deferred`) do not cross on their own: they
	ride, in order and with copies of their bytes, with the next call that needs an answer, or with a "$flush" at
	the end of the event. The board sees the same calls in the same order; a cut, which only a persistent write
	makes, still stops the device at the call that caused it.
*/

import { spawn, type ChildProcess } from "node:child_process";
import { createRequire } from "node:module";
import * as path from "node:path";
import type { Readable, Writable } from "node:stream";
import type { Board, DeviceEvent } from "../board/board";
import { PowerCutError, RestartError } from "../board/board";
import { deviceBundle } from "./bundle";
import { type Engine, type EngineStop, preludeWithTransport, wrapBundle } from "./engine";

const require = createRequire(import.meta.url);

export function xsnapWorkerPath(): string {
	const root = path.dirname(require.resolve("@agoric/xsnap/package.json"));
	return path.join(root, "xsnap-native/xsnap/build/bin/lin/release/xsnap-worker");
}

const transport = `
	const encoder = new TextEncoder(), decoder = new TextDecoder();
	const pack = (json, data) => {
		const text = encoder.encode(JSON.stringify(json));
		const bytes = data === undefined ? undefined : ArrayBuffer.isView(data)
			? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : new Uint8Array(data);
		const message = new Uint8Array(4 + text.length + (bytes ? bytes.length : 0));
		new DataView(message.buffer).setUint32(0, text.length, true);
		message.set(text, 4);
		if (bytes) message.set(bytes, 4 + text.length);
		return message.buffer;
	};
	const unpack = (buffer) => {
		const length = new DataView(buffer).getUint32(0, true);
		const json = JSON.parse(decoder.decode(new Uint8Array(buffer, 4, length)));
		const data = buffer.byteLength > 4 + length ? buffer.slice(4 + length) : undefined;
		return { json, data };
	};
	const deferrable = new Set(["digest.write", "report.progress", "log"]);
	let deferred = [], deferredBytes = [];
	const bytesOf = (data) => data === undefined ? undefined : ArrayBuffer.isView(data)
		? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : new Uint8Array(data);
	const cross = (op, args, data) => {
		const bytes = bytesOf(data);
		let total = bytes ? bytes.length : 0;
		for (const each of deferredBytes) total += each.length;
		let joined;
		if (deferredBytes.length) {
			joined = new Uint8Array(total);
			let offset = 0;
			for (const each of deferredBytes) { joined.set(each, offset); offset += each.length; }
			if (bytes) joined.set(bytes, offset);
		}
		else joined = bytes;
		const request = pack([op, args, deferred, bytes ? bytes.length : -1], joined);
		deferred = [];
		deferredBytes = [];
		return unpack(issueCommand(request));
	};
	const rawHost = (op, args, data) => {
		if (deferrable.has(op)) {
			const bytes = bytesOf(data);
			deferred.push([op, args, bytes ? bytes.length : -1]);
			if (bytes) deferredBytes.push(bytes.slice());
			return { value: undefined };
		}
		const { json, data: bytes } = cross(op, args, data);
		if (json.value === "$bytes") json.value = bytes || new ArrayBuffer(0);
		return json;
	};
	globalThis.flushHost = () => { if (deferred.length) cross("$flush", [], undefined); };
	globalThis.handleCommand = (buffer) => {
		if (buffer.byteLength === 0) return void gc();
		const { json, data } = unpack(buffer);
		globalThis.deliverToDevice(json, data);
		globalThis.flushHost();
	};
`;

function pack(json: unknown, data?: Uint8Array): Buffer {
	const text = Buffer.from(JSON.stringify(json));
	const header = Buffer.alloc(4);
	header.writeUInt32LE(text.length, 0);
	return Buffer.concat(data ? [header, text, data] : [header, text]);
}

function unpack(buffer: Buffer): { json: any; data: Uint8Array | undefined } {
	const length = buffer.readUInt32LE(0);
	const json = JSON.parse(buffer.subarray(4, 4 + length).toString());
	const data = buffer.length > 4 + length ? new Uint8Array(buffer.subarray(4 + length)) : undefined;
	return { json, data };
}

export class XsEngine implements Engine {
	heapSlots: number | undefined;
	readonly #heapAfterGc: boolean;
	#process: ChildProcess | undefined;
	#toXs: Writable | undefined;
	#fromXs: Readable | undefined;
	#pending: Buffer = Buffer.alloc(0);
	#waiting: ((message: Buffer | undefined) => void) | undefined;
	#messages: Buffer[] = [];
	#board: Board | undefined;
	#stop: EngineStop;

	readonly #entry: string | undefined;

	/** `entry`: the firmware's entry module (deviceBundle's), device-entry.ts by default. */
	constructor(options: { heapAfterGc?: boolean; entry?: string } = {}) {
		this.#heapAfterGc = options.heapAfterGc ?? false;
		this.#entry = options.entry;
	}

	async boot(board: Board): Promise<EngineStop> {
		this.#board = board;
		// Its own process group: a Ctrl-C (SIGINT to the terminal's group) reaches the run loop, which shuts the device
		// down in order through this worker; the worker ends with its pipes when the run ends or dies.
		const child = spawn(xsnapWorkerPath(), ["xs-ota-device"], { stdio: ["ignore", "inherit", "inherit", "pipe", "pipe"], detached: true });
		this.#process = child;
		this.#toXs = child.stdio[3] as Writable;
		this.#fromXs = child.stdio[4] as Readable;
		this.#toXs.on("error", () => {});
		this.#fromXs.on("data", (chunk: Buffer) => this.#receive(chunk));
		this.#fromXs.on("end", () => this.#deliverMessage(undefined));
		await this.#command(Buffer.concat([Buffer.from("e"), Buffer.from(preludeWithTransport(transport))]));
		if (this.#stop) return this.#stop;
		return this.#command(Buffer.concat([Buffer.from("e"), Buffer.from(`${wrapBundle(deviceBundle(this.#entry))}\nflushHost();`)]));
	}

	async deliver({ event, data }: DeviceEvent): Promise<EngineStop> {
		const stop = await this.#command(Buffer.concat([Buffer.from("?"), pack(event, data)]));
		// XS collects only when its heap runs out, so the meter mostly counts garbage; gc() first leaves the live
		// slots. An empty command, not an "e" script: each evaluated script keeps one slot for good.
		if (!stop && this.#heapAfterGc) return this.#command(Buffer.from("?"));
		return stop;
	}

	/** Sends one command and serves XS's issueCommand calls until its reply. */
	async #command(message: Buffer): Promise<EngineStop> {
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
				if (separator > 0) {
					const meter = JSON.parse(reply.subarray(1, separator).toString());
					this.heapSlots = meter.currentHeapCount ?? undefined;
				}
				return undefined;
			}
			if (kind === "!") throw new Error(`xs: ${reply.subarray(1).toString()}`);
			throw new Error(`xs: unexpected reply ${kind}`);
		}
	}

	#serve(request: Buffer): void {
		const board = this.#board!;
		const { json, data } = unpack(request);
		const [op, args, deferred, length] = json as [string, unknown[], [string, unknown[], number][], number];
		let reply: Buffer, offset = 0;
		const bytes = (count: number) => (count < 0 ? undefined : data!.subarray(offset, (offset += count)));
		try {
			for (const [each, eachArgs, count] of deferred) board.call(each, eachArgs, bytes(count));
			const value = op === "$flush" ? null : board.call(op, args, bytes(length));
			reply = value instanceof Uint8Array ? pack({ value: "$bytes" }, value) : pack({ value: value ?? null });
		}
		catch (error) {
			if (error instanceof PowerCutError) { this.#stop = "cut"; return; }
			if (error instanceof RestartError) { this.#stop = "restart"; return; }
			reply = pack({ error: (error as Error).message, name: (error as Error).name });
		}
		this.#send(Buffer.concat([Buffer.from("/"), reply]));
	}

	#send(message: Buffer): void {
		this.#toXs!.write(Buffer.concat([Buffer.from(`${message.length}:`), message, Buffer.from(",")]));
	}

	#receive(chunk: Buffer): void {
		this.#pending = this.#pending.length ? Buffer.concat([this.#pending, chunk]) : chunk;
		for (;;) {
			const colon = this.#pending.indexOf(0x3a);
			if (colon < 0) return;
			const length = Number(this.#pending.subarray(0, colon).toString());
			if (this.#pending.length < colon + 1 + length + 1) return;
			const message = this.#pending.subarray(colon + 1, colon + 1 + length);
			this.#pending = this.#pending.subarray(colon + 2 + length);
			this.#deliverMessage(Buffer.from(message));
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
		this.#process?.kill("SIGKILL");
	}

	dispose(): void {
		this.#process?.kill("SIGKILL");
		this.#process = undefined;
	}
}
