// A CoAP package server for coap:// pulls: GET of a file, block by block (RFC 7959 Block2). Whatever block
// number and size the client asks for is served, so a client resumes mid-file; each block carries the file's
// strong ETag (8 bytes of its SHA-256, so it changes with the content) and the first carries Size2.
// Fault switches: drop every Nth request without a word, answer every Mth with 5.03 and Max-Age.
//
// Built on a plain dgram socket with coap-packet (the `coap` library's codec): the library's server picks
// its own ETag (a 2-byte XOR of the payload, which can stay the same when the content changes), sends Size2
// only when asked, and answers later blocks of a token from a payload it cached at block 0, so a file
// replaced mid-download would still be served from the old copy.

import { createHash } from "node:crypto";
import * as dgram from "node:dgram";
import { generate, parse, type ParsedPacket } from "coap-packet";
import { uintOption } from "./coap-option";
import { DtlsServer, onlyIdentity, type Psk } from "./dtls-server";

const defaultSzx = 6; // 1024-byte blocks when the client does not ask
const unavailableMaxAge = 1; // seconds
const octetStream = 42;
const recentLimit = 256;

type File = { bytes: Uint8Array; etag: Buffer };


export class CoapFileServer {
	readonly port: number;
	faults: { dropEvery?: number; unavailableEvery?: number } = {};
	readonly stats = { requests: 0, blocks: 0, bytes: 0 };
	/** The DTLS server in front (coaps://), or undefined (coap://). */
	readonly dtls: DtlsServer | undefined;
	readonly #socket: dgram.Socket;
	readonly #host: string;
	readonly #files = new Map<string, File>();
	// Replies by peer and message id, so a retransmitted CON gets the same answer (RFC 7252 §4.5).
	readonly #recent = new Map<string, Buffer>();
	#messageId = Math.floor(Math.random() * 0x10000);

	private constructor(socket: dgram.Socket, dtls?: DtlsServer) {
		this.#socket = socket;
		this.dtls = dtls;
		const address = socket.address();
		this.port = address.port;
		this.#host = address.address;
		socket.on("message", (message, peer) => this.#receive(message, peer));
	}

	/** With `psk`, files are served over DTLS (coaps://) to that identity with that key only. */
	static async start(options: { port?: number; host?: string; psk?: Psk } = {}): Promise<CoapFileServer> {
		const psk = options.psk;
		if (psk) {
			const dtls = await DtlsServer.start({ port: options.port, host: options.host, key: onlyIdentity(psk) });
			return new CoapFileServer(dtls.socket, dtls);
		}
		return new Promise((resolve, reject) => {
			const socket = dgram.createSocket("udp4");
			socket.once("error", reject);
			socket.bind(options.port ?? 0, options.host ?? "127.0.0.1", () => {
				socket.off("error", reject);
				resolve(new CoapFileServer(socket));
			});
		});
	}

	url(path: string): string {
		return `${this.dtls ? "coaps" : "coap"}://${this.#host}:${this.port}${path.startsWith("/") ? "" : "/"}${path}`;
	}

	serve(path: string, bytes: Uint8Array): void {
		const copy = Uint8Array.from(bytes);
		this.#files.set(this.#key(path), { bytes: copy, etag: createHash("sha256").update(copy).digest().subarray(0, 8) });
	}

	/** Changes a served file, mid-download if need be: its ETag changes with it. */
	replace(path: string, bytes: Uint8Array): void {
		if (!this.#files.has(this.#key(path))) throw new Error(`no file at ${path}`);
		this.serve(path, bytes);
	}

	close(): Promise<void> {
		return new Promise((resolve) => this.#socket.close(() => resolve()));
	}

	#key(path: string): string {
		return "/" + path.split("/").filter(Boolean).join("/");
	}

	#receive(message: Buffer, peer: dgram.RemoteInfo): void {
		let packet: ParsedPacket;
		try {
			packet = parse(message);
		}
		catch {
			return;
		}
		// Only requests: empty ACKs and RSTs end nothing here, since every reply is piggybacked or NON.
		if (!/^0\.0[1-7]$/.test(packet.code)) return;
		const recentKey = `${peer.address}:${peer.port}/${packet.messageId}`;
		const repeated = packet.confirmable ? this.#recent.get(recentKey) : undefined;
		if (repeated) return void this.#socket.send(repeated, peer.port, peer.address);
		const count = ++this.stats.requests;
		if (this.faults.dropEvery && count % this.faults.dropEvery === 0) return;
		const reply = this.#answer(packet, count);
		const bytes = generate({
			...reply, token: packet.token, confirmable: false, ack: packet.confirmable,
			messageId: packet.confirmable ? packet.messageId : (this.#messageId = (this.#messageId + 1) & 0xffff),
		});
		if (packet.confirmable) {
			this.#recent.set(recentKey, bytes);
			if (this.#recent.size > recentLimit) this.#recent.delete(this.#recent.keys().next().value!);
		}
		this.#socket.send(bytes, peer.port, peer.address);
	}

	#answer(packet: ParsedPacket, count: number): { code: string; options?: { name: string; value: Buffer }[]; payload?: Buffer } {
		if (this.faults.unavailableEvery && count % this.faults.unavailableEvery === 0) return { code: "5.03", options: [{ name: "Max-Age", value: uintOption(unavailableMaxAge) }] };
		if (packet.code !== "0.01") return { code: "4.05" };
		const path = "/" + packet.options.filter((option) => option.name === "Uri-Path").map((option) => option.value.toString("utf8")).join("/");
		const file = this.#files.get(path);
		if (!file) return { code: "4.04" };
		const block2 = packet.options.find((option) => option.name === "Block2")?.value;
		if (block2 && block2.length > 3) return { code: "4.02" };
		const requested = block2 === undefined ? defaultSzx : block2.length ? block2.readUIntBE(0, block2.length) : 0;
		const num = requested >> 4, szx = requested & 7;
		if (szx === 7) return { code: "4.02" };
		const size = 16 << szx, start = num * size;
		if (start >= file.bytes.length && !(num === 0 && file.bytes.length === 0)) return { code: "4.02" };
		const payload = Buffer.from(file.bytes.subarray(start, start + size));
		const more = start + payload.length < file.bytes.length ? 1 : 0;
		const options = [
			{ name: "ETag", value: file.etag },
			{ name: "Content-Format", value: uintOption(octetStream) },
			{ name: "Block2", value: uintOption((num << 4) | (more << 3) | szx) },
		];
		if (num === 0) options.push({ name: "Size2", value: uintOption(file.bytes.length) });
		this.stats.blocks++;
		this.stats.bytes += payload.length;
		return { code: "2.05", options, payload };
	}
}
