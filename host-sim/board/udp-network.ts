/*
	The board's UDP sockets over node:dgram, and its DNS look-ups. Every datagram, in either direction, can
	meet a seeded fault: lost, duplicated, or held back `reorderMs` real milliseconds so that later ones
	overtake it; the same seed and the same traffic give the same faults. Received datagrams and look-up
	answers are queued for the board's run loop like the other sockets' events.

	UDP has no connection to wait for: an open socket keeps the run loop waiting real time only while the
	device has a timer armed (it expects an answer it will otherwise give up on or retry), or for quietMs
	after the last datagram; a held datagram or a pending look-up always counts.

	listeningMs counts the board's (virtual) milliseconds with a socket open: the time its radio must listen.
*/

import * as dgram from "node:dgram";
import * as dns from "node:dns";
import * as net from "node:net";
import { seeded } from "../random";
import { EventQueue, type QueuedEvent } from "./event-queue";
import { defaultQuietMs } from "./mqtt-network";
import { NetworkSignal } from "./signal";

export interface UdpFaults {
	/** Probabilities per datagram, each direction. */
	loss?: number;
	duplicate?: number;
	reorder?: number;
	seed?: number;
	/** How long a reordered datagram is held back, real ms (default 20). */
	reorderMs?: number;
	/** The device reads at most this many bytes of a datagram and loses the rest, as Moddable's Linux
	 * simulator does (1024); unlimited by default, as on ESP32. */
	receiveBytes?: number;
}

/** A datagram for the device (id: its socket) or the answer to a look-up (id: the look-up). */
export interface UdpEvent {
	id: number;
	address?: string;
	port?: number;
}

const waitSliceMs = 1000;

export class UdpNetwork {
	/** Datagrams the device sent, before faults. */
	datagramsSent = 0;
	bytesSent = 0;
	/** Datagrams delivered to the device, after faults. */
	datagramsReceived = 0;
	bytesReceived = 0;
	lost = 0;
	duplicated = 0;
	reordered = 0;
	quietMs = defaultQuietMs;
	/** Milliseconds of `now` with at least one socket open, up to the last close. */
	listeningMs = 0;
	#now: () => number;
	#openSince = 0;
	#sockets = new Map<number, dgram.Socket>();
	/** Datagrams handed to each socket and not yet sent: a closed socket still sends them, as lwIP would. */
	#sending = new Map<dgram.Socket, number>();
	#queue: EventQueue<UdpEvent>;
	#faults: Required<UdpFaults> | undefined;
	#random: () => number;
	/** Held datagrams and pending look-ups. */
	#inFlight = 0;
	#lastTraffic = -Infinity;

	/** `now`: the board's clock (ms), for listeningMs. */
	constructor(signal = new NetworkSignal(), faults?: UdpFaults, now: () => number = Date.now) {
		this.#now = now;
		this.#queue = new EventQueue<UdpEvent>(signal, Infinity, () => {});
		this.#faults = faults && { loss: 0, duplicate: 0, reorder: 0, seed: 1, reorderMs: 20, receiveBytes: Infinity, ...faults };
		this.#random = seeded(this.#faults?.seed ?? 1);
	}

	open(id: number, localPort: number): void {
		const socket = dgram.createSocket("udp4");
		socket.on("message", (message, from) => {
			this.#lastTraffic = Date.now();
			this.#faulty(() => {
				if (!this.#sockets.has(id)) return;
				this.datagramsReceived++;
				this.bytesReceived += message.length;
				const received = new Uint8Array(message.subarray(0, this.#faults?.receiveBytes ?? Infinity));
				this.#queue.push({ id, address: from.address, port: from.port }, received);
			});
		});
		// A socket that fails (a port in use) just goes quiet, as a datagram socket would.
		socket.on("error", () => this.close(id));
		// Referenced, like a TCP socket: a board waiting for its server keeps the process alive (the board's
		// power-off closes it).
		socket.bind(localPort);
		if (!this.#sockets.size) this.#openSince = this.#now();
		this.#sockets.set(id, socket);
	}

	send(id: number, address: string, port: number, bytes: Uint8Array): void {
		const socket = this.#sockets.get(id);
		if (!socket) throw new Error("socket closed");
		this.datagramsSent++;
		this.bytesSent += bytes.length;
		this.#lastTraffic = Date.now();
		const datagram = Buffer.from(bytes);
		this.#faulty(() => {
			if (this.#sockets.get(id) !== socket) return;
			this.#sending.set(socket, (this.#sending.get(socket) ?? 0) + 1);
			socket.send(datagram, port, address, () => {
				const left = this.#sending.get(socket)! - 1;
				if (left) return void this.#sending.set(socket, left);
				this.#sending.delete(socket);
				if (![...this.#sockets.values()].includes(socket)) socket.close();
			});
		});
	}

	close(id: number): void {
		const socket = this.#sockets.get(id);
		if (!socket) return;
		this.#sockets.delete(id);
		if (!this.#sockets.size) this.listeningMs += this.#now() - this.#openSince;
		if (!this.#sending.has(socket)) socket.close();
		this.#queue.drop(id);
	}

	/** The device's Net.resolve: IPv4 only; localhost and literals answer at once. */
	resolve(id: number, host: string): void {
		if (host === "localhost") return this.#queue.push({ id, address: "127.0.0.1" });
		if (net.isIPv4(host)) return this.#queue.push({ id, address: host });
		this.#inFlight++;
		dns.lookup(host, { family: 4 }, (error, address) => {
			this.#inFlight--;
			this.#queue.push({ id, address: error ? undefined : address });
		});
	}

	/** The local port a socket is bound to (undefined until bound, or when closed). */
	localPort(id: number): number | undefined {
		try {
			return this.#sockets.get(id)?.address().port;
		}
		catch {
			return undefined;
		}
	}

	/** Local ports of the open, bound sockets. */
	get localPorts(): number[] {
		return [...this.#sockets.keys()].map((id) => this.localPort(id)).filter((port): port is number => port !== undefined);
	}

	/** The events waiting for the device, next first. */
	get queued(): readonly QueuedEvent<UdpEvent>[] {
		return this.#queue.entries;
	}

	take(): { event: UdpEvent; data: Uint8Array | undefined } | undefined {
		return this.#queue.take();
	}

	/** Real ms the run loop should wait for datagrams (see the leading comment), or undefined. */
	waitFor(untilTimer: number | undefined): number | undefined {
		if (this.#queue.length) return 0;
		if (this.#inFlight) return untilTimer ?? waitSliceMs;
		if (!this.#sockets.size) return undefined;
		if (untilTimer !== undefined) return untilTimer;
		const quiet = this.quietMs - (Date.now() - this.#lastTraffic);
		return quiet > 0 ? quiet : undefined;
	}

	/** Power off: sockets vanish, queued and held datagrams are lost (those already sent still go out). */
	closeAll(): void {
		for (const id of [...this.#sockets.keys()]) this.close(id);
		this.#queue.clear();
	}

	#faulty(deliver: () => void): void {
		const faults = this.#faults;
		if (!faults) return deliver();
		if (this.#random() < faults.loss) {
			this.lost++;
			return;
		}
		const copies = this.#random() < faults.duplicate ? 2 : 1;
		if (copies === 2) this.duplicated++;
		for (let copy = 0; copy < copies; copy++) {
			if (this.#random() >= faults.reorder) {
				deliver();
				continue;
			}
			this.reordered++;
			this.#inFlight++;
			setTimeout(() => {
				this.#inFlight--;
				deliver();
			}, faults.reorderMs).unref();
		}
	}
}
