// A CoAP peer made of a bare UDP socket and coap-packet: it sends exactly the datagrams a test writes (one
// Block1 part, an observe it never acknowledges), which the npm coap Agent would segment or acknowledge itself.

import * as dgram from "node:dgram";
import { generate, parse, type ParsedPacket, type Option } from "coap-packet";

export type RawRequest = { code: string; path: string; options?: Option[]; payload?: Buffer; token?: Buffer };

export class RawCoapPeer {
	/** Every datagram received, in order. */
	readonly received: ParsedPacket[] = [];
	/** Whether confirmable messages that are no answer of ours (notifications) get their ACK. */
	acknowledge = true;
	readonly #socket: dgram.Socket;
	#messageId = Math.floor(Math.random() * 0x10000);
	#waiting = new Map<number, (packet: ParsedPacket) => void>();

	private constructor(socket: dgram.Socket) {
		this.#socket = socket;
		socket.on("message", (datagram, from) => {
			const packet = parse(datagram);
			this.received.push(packet);
			const waiting = this.#waiting.get(packet.messageId);
			if (packet.ack && waiting) {
				this.#waiting.delete(packet.messageId);
				return waiting(packet);
			}
			if (packet.confirmable && this.acknowledge)
				socket.send(generate({ messageId: packet.messageId, code: "0.00", ack: true }), from.port, from.address);
		});
	}

	static open(): Promise<RawCoapPeer> {
		return new Promise((resolve) => {
			const socket = dgram.createSocket("udp4");
			socket.bind(0, "127.0.0.1", () => resolve(new RawCoapPeer(socket)));
		});
	}

	/** Sends one CON request and resolves with the piggybacked answer (rejects after `timeoutMs` of silence). */
	request(to: { address: string; port: number }, request: RawRequest, timeoutMs = 10000): Promise<ParsedPacket> {
		const messageId = this.#messageId = (this.#messageId + 1) & 0xffff;
		const path = request.path.split("/").filter(Boolean).map((segment) => ({ name: "Uri-Path", value: Buffer.from(segment) }));
		const packet = generate({
			messageId, code: request.code, confirmable: true, token: request.token ?? Buffer.from([messageId >> 8, messageId & 0xff]),
			options: [...path, ...(request.options ?? [])], payload: request.payload,
		}, 2048);
		return new Promise((resolve, reject) => {
			const timer = setTimeout(() => {
				this.#waiting.delete(messageId);
				reject(new Error(`no answer to ${request.code} ${request.path}`));
			}, timeoutMs);
			this.#waiting.set(messageId, (answer) => {
				clearTimeout(timer);
				resolve(answer);
			});
			this.#socket.send(packet, to.port, to.address);
		});
	}

	/** Sends one datagram as it is (a malformed one included). */
	send(to: { address: string; port: number }, datagram: Uint8Array): Promise<void> {
		return new Promise((resolve) => this.#socket.send(datagram, to.port, to.address, () => resolve()));
	}

	close(): Promise<void> {
		return new Promise((resolve) => this.#socket.close(() => resolve()));
	}
}

/** A CoAP uint option value (minimal bytes, 0 as none). */
export function uint(value: number): Buffer {
	const bytes: number[] = [];
	for (let rest = value; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest % 256);
	return Buffer.from(bytes);
}

/** A Block1/Block2 option value (RFC 7959 §2.2). */
export function block(num: number, more: boolean, szx: number): Buffer {
	return uint(num * 16 + (more ? 8 : 0) + szx);
}

export function option(packet: ParsedPacket, name: string): Buffer | undefined {
	return packet.options.find((candidate) => candidate.name === name)?.value;
}

export function uintOf(value: Buffer | undefined): number | undefined {
	if (!value) return undefined;
	let number = 0;
	for (const byte of value) number = number * 256 + byte;
	return number;
}
