/*
	The board's HTTP client sockets, behaving like Moddable's http Request on a real network stack:
	connect → send (Connection: close, Host without port) → status → one event per header (name lower-cased)
	→ headers complete → body fragments of at most `fragmentBytes` → complete, or error (-2) when the
	connection drops before the announced length. Events are queued for the board's run loop.
	A secure request speaks TLS (tls.ts) and sends once the handshake is done; a failed handshake is an error
	whose value is its reason.
*/

import * as net from "node:net";
import * as tls from "node:tls";
import { connectOptions, tlsFailure, type SecureSpec } from "./tls";
import { EventQueue, type QueuedEvent } from "./event-queue";
import { NetworkSignal } from "./signal";

export interface HttpEvent {
	id: number;
	message: number;
	value?: unknown;
	etc?: unknown;
}

export interface RequestSpec {
	host: string;
	port: number;
	path: string;
	method: string;
	headers: string[];
	secure: SecureSpec | undefined;
}

/** Body bytes per fragment: one TCP segment on Ethernet-sized frames, as lwIP hands them to Moddable. */
export const defaultFragmentBytes = 1460;
const maxHeaderBytes = 16384;
const receiveWindow = 16384;

class Exchange {
	socket: net.Socket;
	buffer: Buffer = Buffer.alloc(0);
	phase: "status" | "headers" | "body" | "done" = "status";
	remaining: number | undefined;
	chunked = false;
	chunkLeft = 0;
	chunkPhase: "size" | "data" | "crlf" | "trailer" = "size";
	headersSize = 0;
	connected = false;

	constructor(readonly id: number, readonly network: HttpNetwork, spec: RequestSpec, secure: tls.ConnectionOptions | undefined) {
		const host = spec.host === "localhost" ? "127.0.0.1" : spec.host;
		this.socket = secure ? tls.connect({ ...secure, host }) : net.connect({ host, port: spec.port });
		this.socket.on(secure ? "secureConnect" : "connect", () => {
			this.connected = true;
			const lines = [`${spec.method} ${spec.path} HTTP/1.1`, "Connection: close"];
			let host = true;
			for (let i = 0; i + 1 < spec.headers.length; i += 2) {
				lines.push(`${spec.headers[i]}: ${spec.headers[i + 1]}`);
				if (spec.headers[i].toLowerCase() === "host") host = false;
			}
			if (host) lines.push(`Host: ${spec.host}`);
			this.socket.write(lines.join("\r\n") + "\r\n\r\n");
		});
		this.socket.on("data", (data) => this.receive(data));
		this.socket.on("error", (error: NodeJS.ErrnoException) => {
			const reason = secure && !this.connected ? tlsFailure(error, { mutual: false, sent: false }) : undefined;
			this.finish(false, reason);
		});
		this.socket.on("close", () => {
			if (this.phase === "body" && !this.chunked) this.parsePlain(true);
			this.finish(this.phase === "body" && this.remaining === undefined && !this.chunked);
		});
	}

	receive(data: Buffer): void {
		this.network.bytesReceived += data.length;
		if (this.buffer.length && this.phase === "body" && !this.chunked) {
			// A partial fragment waits: it takes what it lacks from the new bytes, and only that is copied.
			const missing = Math.min(data.length, this.network.fragmentBytes - this.buffer.length);
			this.buffer = Buffer.concat([this.buffer, data.subarray(0, missing)]);
			data = data.subarray(missing);
			this.parse();
		}
		if (data.length) this.buffer = this.buffer.length ? Buffer.concat([this.buffer, data]) : data;
		this.parse();
		// Back-pressure, like a TCP receive window: the host holds little more than the device has taken.
		if (this.network.backedUp) this.socket.pause();
	}

	parse(): void {
		while (this.phase === "status" || this.phase === "headers") {
			const end = this.buffer.indexOf("\n");
			if (end < 0) {
				if (this.buffer.length > maxHeaderBytes) this.finish(false);
				return;
			}
			const line = this.buffer.subarray(0, end).toString("latin1").replace(/\r$/, "");
			this.buffer = this.buffer.subarray(end + 1);
			this.headersSize += end + 1;
			if (this.headersSize > maxHeaderBytes) return this.finish(false);
			if (this.phase === "status") {
				const match = /^HTTP\/\d\.\d\s+(\d{3})/.exec(line);
				if (!match) return this.finish(false);
				this.emit(1, Number(match[1]));
				this.phase = "headers";
			}
			else if (line === "") {
				this.emit(3);
				this.phase = "body";
				if (this.remaining === 0 && !this.chunked) return this.finish(true);
			}
			else {
				const colon = line.indexOf(":");
				const name = line.slice(0, colon).trim().toLowerCase(), value = line.slice(colon + 1).trim();
				// RFC 9112 §6.3: a response whose Content-Length is not a number cannot be framed; drop it.
				if (name === "content-length" && !/^\d+$/.test(value)) return this.finish(false);
				this.emit(2, name, value);
				if (name === "content-length") this.remaining = Number(value);
				else if (name === "transfer-encoding" && value.toLowerCase() === "chunked") this.chunked = true;
			}
		}
		if (this.phase === "body") this.chunked ? this.parseChunked() : this.parsePlain();
	}

	parsePlain(ended = false): void {
		while (this.buffer.length) {
			let count = Math.min(this.buffer.length, this.network.fragmentBytes);
			if (this.remaining !== undefined) count = Math.min(count, this.remaining);
			if (count === 0) break;
			// Whole fragments only, whatever TCP's timing: a run's persistent writes are then reproducible.
			const wanted = Math.min(this.network.fragmentBytes, this.remaining ?? Infinity);
			if (count < wanted && !ended) break;
			this.fragment(this.buffer.subarray(0, count));
			this.buffer = this.buffer.subarray(count);
			if (this.remaining !== undefined) {
				this.remaining -= count;
				if (this.remaining === 0) return this.finish(true);
			}
		}
	}

	parseChunked(): void {
		while (this.buffer.length) {
			if (this.chunkPhase === "size" || this.chunkPhase === "crlf" || this.chunkPhase === "trailer") {
				const end = this.buffer.indexOf("\n");
				if (end < 0) return;
				const line = this.buffer.subarray(0, end).toString("latin1").trim();
				this.buffer = this.buffer.subarray(end + 1);
				if (this.chunkPhase === "crlf") { this.chunkPhase = "size"; continue; }
				if (this.chunkPhase === "trailer") { if (line === "") return this.finish(true); continue; }
				this.chunkLeft = parseInt(line, 16);
				if (!Number.isFinite(this.chunkLeft)) return this.finish(false);
				this.chunkPhase = this.chunkLeft === 0 ? "trailer" : "data";
				continue;
			}
			const count = Math.min(this.buffer.length, this.chunkLeft, this.network.fragmentBytes);
			this.fragment(this.buffer.subarray(0, count));
			this.buffer = this.buffer.subarray(count);
			this.chunkLeft -= count;
			if (this.chunkLeft === 0) this.chunkPhase = "crlf";
		}
	}

	/** A view, not a copy: nothing writes to what the socket delivered, and the engines copy it for the device. */
	fragment(bytes: Buffer): void {
		this.network.queue({ id: this.id, message: 4, value: bytes.length }, new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length));
	}

	emit(message: number, value?: unknown, etc?: unknown): void {
		this.network.queue({ id: this.id, message, value, etc });
	}

	finish(ok: boolean, reason?: string): void {
		if (this.phase === "done") return;
		this.phase = "done";
		if (ok) this.emit(5);
		else this.emit(-2, reason);
		this.close();
	}

	close(): void {
		this.phase = "done";
		this.socket.destroy();
		this.network.forget(this.id);
	}
}

export class HttpNetwork {
	fragmentBytes: number;
	/** Bytes received from sockets, headers included. */
	bytesReceived = 0;
	/** HTTP body bytes delivered to the device. */
	bodyBytes = 0;
	/** How long each exchange was open, on the board's clock: from the device's request to its end. */
	readonly exchangeMs: number[] = [];
	#exchanges = new Map<number, Exchange>();
	#opened = new Map<number, number>();
	#queue: EventQueue<HttpEvent>;
	readonly #signal: NetworkSignal;
	readonly #now: () => number;

	/** `now`: the board's clock (ms), for exchangeMs. */
	constructor(fragmentBytes = defaultFragmentBytes, signal = new NetworkSignal(), now: () => number = Date.now) {
		this.fragmentBytes = fragmentBytes;
		this.#signal = signal;
		this.#now = now;
		this.#queue = new EventQueue<HttpEvent>(signal, receiveWindow, () => {
			for (const exchange of this.#exchanges.values()) exchange.socket.resume();
		});
	}

	open(id: number, spec: RequestSpec): void {
		const secure = spec.secure ? connectOptions(spec.secure, spec.host, spec.port) : undefined;
		// Refused before any byte is sent (no trust anchor, unusable credentials): the error comes as an event.
		if (typeof secure === "string") return this.queue({ id, message: -2, value: secure });
		this.#opened.set(id, this.#now());
		this.#exchanges.set(id, new Exchange(id, this, spec, secure));
	}

	close(id: number): void {
		this.#exchanges.get(id)?.close();
		this.#queue.drop(id);
	}

	forget(id: number): void {
		this.#exchanges.delete(id);
		const opened = this.#opened.get(id);
		if (opened === undefined) return;
		this.#opened.delete(id);
		this.exchangeMs.push(this.#now() - opened);
	}

	queue(event: HttpEvent, data?: Uint8Array): void {
		this.#queue.push(event, data);
	}

	/** Whether a socket that just received data should pause (the device is behind). */
	get backedUp(): boolean {
		return this.#queue.full;
	}

	/** The events waiting for the device, next first. */
	get queued(): readonly QueuedEvent<HttpEvent>[] {
		return this.#queue.entries;
	}

	take(): { event: HttpEvent; data: Uint8Array | undefined } | undefined {
		const entry = this.#queue.take();
		if (entry?.data) this.bodyBytes += entry.data.length;
		return entry;
	}

	/** Sockets still open or events not yet delivered. */
	get busy(): boolean {
		return this.#exchanges.size > 0 || this.#queue.length > 0;
	}

	get hasEvents(): boolean {
		return this.#queue.length > 0;
	}

	/** Resolves when an event arrives or after `ms` real milliseconds. */
	wait(ms: number): Promise<void> {
		return this.#signal.wait(ms);
	}

	closeAll(): void {
		for (const exchange of [...this.#exchanges.values()]) exchange.close();
		this.#queue.clear();
	}
}
