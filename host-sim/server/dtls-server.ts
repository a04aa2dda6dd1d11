/*
	A DTLS 1.2 server with pre-shared keys (RFC 6347, RFC 4279, the RFC 7925 profile) in front of a UDP server of
	host-sim: it owns the real socket and hands the server behind it `socket`, a stand-in dgram socket whose
	datagrams are each peer's plaintext. Written from the RFCs for host-sim alone: it shares no code with the
	device's client (src/dtls), so a misreading cannot hide on both sides; Node's crypto does AES-CCM and HMAC.

	Per peer (address:port):
	  ClientHello without a valid cookie → HelloVerifyRequest (stateless; the cookie is an HMAC of the peer
	    and its random)
	  ClientHello with the cookie → ServerHello, [ServerKeyExchange: the hint], ServerHelloDone (flight 4),
	    sent again on a timer (1 s, doubling, maxRepeats times; unless repeatFlights is false) until a Finished
	    we can read comes
	  ClientKeyExchange → the identity's key (none: a fatal unknown_psk_identity alert), keys
	  ChangeCipherSpec, Finished (epoch 1) → checked (wrong: a decrypt_error alert) → ChangeCipherSpec, Finished
	  connected → application data both ways; a repeated client flight gets our last one again.
	A record that fails its tag is dropped without a word, as OpenSSL does: a client with the wrong key sees
	only flight 4 again. Only TLS_PSK_WITH_AES_128_CCM_8; handshake messages must come whole (unfragmented).
*/

import { EventEmitter } from "node:events";
import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes } from "node:crypto";
import * as dgram from "node:dgram";

export interface DtlsServerOptions {
	port?: number;
	host?: string;
	/** The key of a PSK identity, or undefined to refuse it. */
	key(identity: Buffer): Buffer | undefined;
	hint?: string;
	/** false: flight 4 is never sent again on a timer, only when its ClientHello comes again (tinydtls's way): a
	    client with another key then hears nothing at all after its Finished. */
	repeatFlights?: boolean;
	log?: (line: string) => void;
}

export interface Psk {
	identity: string;
	key: Uint8Array;
}

/** The key lookup of a server that knows one identity (UTF-8) and refuses every other. */
export function onlyIdentity(psk: Psk): (identity: Buffer) => Buffer | undefined {
	return (identity) => (identity.toString("utf8") === psk.identity ? Buffer.from(psk.key) : undefined);
}

const contentType = { changeCipherSpec: 20, alert: 21, handshake: 22, applicationData: 23 };
const messageType = { clientHello: 1, serverHello: 2, helloVerifyRequest: 3, serverKeyExchange: 12, serverHelloDone: 14, clientKeyExchange: 16, finished: 20 };
const alertType = { closeNotify: 0, handshakeFailure: 40, decodeError: 50, decryptError: 51, unknownPskIdentity: 115 };
const pskWithAes128Ccm8 = 0xc0a8, renegotiationInfoScsv = 0x00ff, renegotiationInfo = 0xff01;
const dtls12 = Buffer.of(0xfe, 0xfd);
const maxRepeats = 6;

function prf(secret: Buffer, label: string, seed: Buffer, length: number): Buffer {
	const labelSeed = Buffer.concat([Buffer.from(label, "latin1"), seed]), out: Buffer[] = [];
	let a = labelSeed, total = 0;
	while (total < length) {
		a = createHmac("sha256", secret).update(a).digest();
		const block = createHmac("sha256", secret).update(a).update(labelSeed).digest();
		out.push(block);
		total += block.length;
	}
	return Buffer.concat(out).subarray(0, length);
}

function uint(value: number, bytes: number): Buffer {
	const out = Buffer.alloc(bytes);
	out.writeUIntBE(value, 0, bytes);
	return out;
}

/** A handshake message as hashed and, unfragmented, sent. */
function message(type: number, sequence: number, body: Buffer): Buffer {
	return Buffer.concat([Buffer.of(type), uint(body.length, 3), uint(sequence, 2), uint(0, 3), uint(body.length, 3), body]);
}

/** A ClientHello's fields, or undefined when it is malformed. */
function parseClientHello(body: Buffer): { random: Buffer; cookie: Buffer; suites: number[]; extensions: number[] } | undefined {
	try {
		let at = 2;
		const random = body.subarray(at, at += 32);
		at += 1 + body[at];
		const cookie = body.subarray(at + 1, at + 1 + body[at]);
		at += 1 + body[at];
		const suites: number[] = [];
		const suitesEnd = at + 2 + body.readUInt16BE(at);
		for (at += 2; at < suitesEnd; at += 2) suites.push(body.readUInt16BE(at));
		at += 1 + body[at];
		const extensions: number[] = [];
		if (at + 2 <= body.length) {
			const end = at + 2 + body.readUInt16BE(at);
			for (at += 2; at + 4 <= end; at += 4 + body.readUInt16BE(at + 2)) extensions.push(body.readUInt16BE(at));
		}
		return random.length === 32 && at <= body.length ? { random, cookie, suites, extensions } : undefined;
	}
	catch {
		return undefined;
	}
}

interface Keys {
	clientKey: Buffer;
	serverKey: Buffer;
	clientIv: Buffer;
	serverIv: Buffer;
}

interface Peer {
	address: string;
	port: number;
	state: "flight4" | "keyed" | "connected";
	clientRandom: Buffer;
	serverRandom: Buffer;
	/** The handshake messages hashed for the Finished, from the ClientHello with the cookie on. */
	transcript: Buffer[];
	/** The message_seq of our next handshake message, and the client's next. */
	sendSequence: number;
	receiveSequence: number;
	master?: Buffer;
	keys?: Keys;
	readEpoch: number;
	/** Next record sequence number per epoch we write. */
	writeSequence: [number, number];
	/** Our last flight's handshake messages (the Finished after a ChangeCipherSpec when keyed). */
	flight: Buffer[];
	timer?: NodeJS.Timeout;
	repeats: number;
	/** The highest epoch-1 record sequence received, and a bit per one of the 64 before it. */
	highest: bigint;
	seen: bigint;
}

export class DtlsServer {
	readonly port: number;
	readonly host: string;
	/** What the server behind sees: every peer's plaintext datagrams, as a dgram socket's. */
	readonly socket: dgram.Socket;
	/** ClientHellos heard, records dropped because their tag failed, handshakes refused and finished (for tests). */
	readonly stats = { clientHellos: 0, badRecords: 0, refused: 0, handshakes: 0 };
	/** While true the server hears datagrams and answers none: a server that never finishes a handshake. */
	silent = false;
	readonly #socket: dgram.Socket;
	readonly #options: DtlsServerOptions;
	readonly #cookieSecret = randomBytes(32);
	readonly #peers = new Map<string, Peer>();
	readonly #log: (line: string) => void;

	private constructor(socket: dgram.Socket, options: DtlsServerOptions) {
		this.#socket = socket;
		this.#options = options;
		this.#log = options.log ?? (() => {});
		const address = socket.address();
		this.port = address.port;
		this.host = address.address;
		this.socket = new PlaintextSocket(this) as unknown as dgram.Socket;
		socket.on("message", (datagram, from) => this.#receive(datagram, from.address, from.port));
	}

	static start(options: DtlsServerOptions): Promise<DtlsServer> {
		return new Promise((resolve, reject) => {
			const socket = dgram.createSocket("udp4");
			socket.once("error", reject);
			socket.bind(options.port ?? 0, options.host ?? "127.0.0.1", () => {
				socket.off("error", reject);
				resolve(new DtlsServer(socket, options));
			});
		});
	}

	/** Sends plaintext to a connected peer; false when there is none. */
	send(plaintext: Buffer, address: string, port: number): boolean {
		const peer = this.#peers.get(`${address}:${port}`);
		if (peer?.state !== "connected") return false;
		this.#socket.send(this.#record(peer, contentType.applicationData, 1, plaintext), port, address);
		return true;
	}

	/** Whether a peer has finished its handshake. */
	connected(address: string, port: number): boolean {
		return this.#peers.get(`${address}:${port}`)?.state === "connected";
	}

	close(): Promise<void> {
		for (const peer of this.#peers.values()) {
			if (peer.state === "connected") this.#alert(peer, 1, alertType.closeNotify);
			clearTimeout(peer.timer);
		}
		this.#peers.clear();
		return new Promise((resolve) => this.#socket.close(() => resolve()));
	}

	#receive(datagram: Buffer, address: string, port: number): void {
		const key = `${address}:${port}`;
		if (this.silent) {
			if (datagram[0] === contentType.handshake && datagram[13] === messageType.clientHello) this.stats.clientHellos++;
			return;
		}
		for (let at = 0; at + 13 <= datagram.length;) {
			const type = datagram[at], epoch = datagram.readUInt16BE(at + 3), sequence = datagram.readUIntBE(at + 5, 6), length = datagram.readUInt16BE(at + 11);
			const header = datagram.subarray(at, at + 13);
			let fragment = datagram.subarray(at + 13, at + 13 + length);
			at += 13 + length;
			if (fragment.length !== length) return;
			const peer = this.#peers.get(key);
			if (epoch === 0 && type === contentType.handshake) {
				this.#handshake(peer, address, port, sequence, fragment, 0);
				continue;
			}
			// The ClientKeyExchange moved a keyed peer to epoch 1: the ChangeCipherSpec after it has nothing to add.
			if (!peer || epoch !== peer.readEpoch) continue;
			if (epoch === 1) {
				const opened = this.#open(peer, header, sequence, fragment);
				if (!opened) {
					this.stats.badRecords++;
					continue;
				}
				fragment = opened;
			}
			switch (type) {
				case contentType.changeCipherSpec: break;
				case contentType.alert:
					this.#log(`dtls ${key}: alert ${fragment[0]}.${fragment[1]}`);
					if (fragment[0] === 2 || fragment[1] === alertType.closeNotify) this.#forget(peer);
					break;
				case contentType.handshake: this.#handshake(peer, address, port, sequence, fragment, epoch); break;
				case contentType.applicationData:
					if (peer.state === "connected") this.socket.emit("message", fragment, { address, family: "IPv4", port, size: fragment.length });
					break;
			}
		}
	}

	#handshake(peer: Peer | undefined, address: string, port: number, recordSequence: number, bytes: Buffer, epoch: number): void {
		for (let at = 0; at + 12 <= bytes.length;) {
			const type = bytes[at], length = bytes.readUIntBE(at + 1, 3), sequence = bytes.readUInt16BE(at + 4);
			const offset = bytes.readUIntBE(at + 6, 3), fragmentLength = bytes.readUIntBE(at + 9, 3);
			const body = bytes.subarray(at + 12, at + 12 + fragmentLength);
			const whole = bytes.subarray(at, at + 12 + fragmentLength);
			at += 12 + fragmentLength;
			if (offset !== 0 || fragmentLength !== length || body.length !== length) return this.#log(`dtls ${address}:${port}: fragmented handshake message ignored`);
			if (type === messageType.clientHello && epoch === 0) {
				peer = this.#clientHello(peer, address, port, recordSequence, sequence, body, whole);
				continue;
			}
			if (!peer) return;
			if (sequence < peer.receiveSequence) {
				// The client repeats a flight we answered: ours was lost.
				if (peer.state === "connected" && type === messageType.finished) this.#sendFlight(peer);
				continue;
			}
			if (sequence > peer.receiveSequence) continue;
			if (type === messageType.clientKeyExchange && peer.state === "flight4") {
				if (!this.#keyExchange(peer, body, whole)) return;
			}
			else if (type === messageType.finished && peer.state === "keyed" && epoch === 1) return this.#finished(peer, body, whole);
			else continue;
		}
	}

	#clientHello(peer: Peer | undefined, address: string, port: number, recordSequence: number, sequence: number, body: Buffer, whole: Buffer): Peer | undefined {
		const hello = parseClientHello(body);
		if (!hello) return peer;
		this.stats.clientHellos++;
		if (peer && peer.clientRandom.equals(hello.random)) {
			// Its ClientHello again: flight 4 was lost.
			if (peer.state === "flight4") this.#sendFlight(peer);
			return peer;
		}
		const cookie = createHmac("sha256", this.#cookieSecret).update(`${address}:${port}`).update(hello.random).digest().subarray(0, 16);
		if (!hello.cookie.equals(cookie)) {
			// RFC 6347 §4.2.1: the HelloVerifyRequest takes the ClientHello's record and message sequence numbers.
			const verify = message(messageType.helloVerifyRequest, sequence, Buffer.concat([Buffer.of(0xfe, 0xff, cookie.length), cookie]));
			this.#socket.send(Buffer.concat([Buffer.of(contentType.handshake), dtls12, uint(0, 2), uint(recordSequence, 6), uint(verify.length, 2), verify]), port, address);
			return peer;
		}
		if (peer) this.#forget(peer); // a client starting over (a reboot, a power cut)
		const key = `${address}:${port}`;
		if (!hello.suites.includes(pskWithAes128Ccm8)) {
			const refused = this.#newPeer(address, port, hello.random, recordSequence, sequence);
			this.#alert(refused, 2, alertType.handshakeFailure);
			this.stats.refused++;
			this.#log(`dtls ${key}: refused, no TLS_PSK_WITH_AES_128_CCM_8 offered`);
			return undefined;
		}
		const fresh = this.#newPeer(address, port, hello.random, recordSequence, sequence);
		this.#peers.set(key, fresh);
		fresh.transcript.push(whole);
		const secureRenegotiation = hello.suites.includes(renegotiationInfoScsv) || hello.extensions.includes(renegotiationInfo);
		const extensions = secureRenegotiation ? Buffer.concat([uint(5, 2), uint(renegotiationInfo, 2), uint(1, 2), Buffer.of(0)]) : Buffer.alloc(0);
		const serverHello = Buffer.concat([dtls12, fresh.serverRandom, Buffer.of(0), uint(pskWithAes128Ccm8, 2), Buffer.of(0), extensions]);
		fresh.flight = [message(messageType.serverHello, fresh.sendSequence++, serverHello)];
		if (this.#options.hint) {
			const hint = Buffer.from(this.#options.hint);
			fresh.flight.push(message(messageType.serverKeyExchange, fresh.sendSequence++, Buffer.concat([uint(hint.length, 2), hint])));
		}
		fresh.flight.push(message(messageType.serverHelloDone, fresh.sendSequence++, Buffer.alloc(0)));
		fresh.transcript.push(...fresh.flight);
		this.#sendFlight(fresh);
		return fresh;
	}

	#newPeer(address: string, port: number, clientRandom: Buffer, recordSequence: number, sequence: number): Peer {
		return {
			address, port, state: "flight4", clientRandom: Buffer.from(clientRandom), serverRandom: randomBytes(32), transcript: [],
			sendSequence: sequence, receiveSequence: sequence + 1, readEpoch: 0, writeSequence: [recordSequence, 0], flight: [],
			repeats: 0, highest: -1n, seen: 0n,
		};
	}

	#keyExchange(peer: Peer, body: Buffer, whole: Buffer): boolean {
		const identity = body.length >= 2 ? body.subarray(2, 2 + body.readUInt16BE(0)) : undefined;
		const psk = identity && identity.length === body.length - 2 ? this.#options.key(identity) : undefined;
		if (!psk) {
			this.#log(`dtls ${peer.address}:${peer.port}: unknown psk identity ${JSON.stringify(identity?.toString("latin1"))}`);
			this.stats.refused++;
			this.#alert(peer, 2, identity ? alertType.unknownPskIdentity : alertType.decodeError);
			this.#forget(peer);
			return false;
		}
		// RFC 4279 §2: N zero bytes and the N-byte key, each after its length.
		const premaster = Buffer.concat([uint(psk.length, 2), Buffer.alloc(psk.length), uint(psk.length, 2), psk]);
		peer.master = prf(premaster, "master secret", Buffer.concat([peer.clientRandom, peer.serverRandom]), 48);
		const block = prf(peer.master, "key expansion", Buffer.concat([peer.serverRandom, peer.clientRandom]), 40);
		peer.keys = { clientKey: block.subarray(0, 16), serverKey: block.subarray(16, 32), clientIv: block.subarray(32, 36), serverIv: block.subarray(36, 40) };
		peer.transcript.push(whole);
		peer.receiveSequence++;
		peer.state = "keyed";
		peer.readEpoch = 1;
		return true;
	}

	#finished(peer: Peer, body: Buffer, whole: Buffer): void {
		clearTimeout(peer.timer);
		const expected = prf(peer.master!, "client finished", this.#transcriptHash(peer), 12);
		if (!expected.equals(body)) {
			this.#alert(peer, 2, alertType.decryptError);
			this.#forget(peer);
			return;
		}
		peer.transcript.push(whole);
		peer.receiveSequence++;
		const finished = message(messageType.finished, peer.sendSequence++, prf(peer.master!, "server finished", this.#transcriptHash(peer), 12));
		peer.flight = [finished];
		peer.transcript = [];
		peer.state = "connected";
		this.stats.handshakes++;
		this.#log(`dtls ${peer.address}:${peer.port}: connected`);
		this.#sendFlight(peer);
	}

	#transcriptHash(peer: Peer): Buffer {
		const hash = createHash("sha256");
		for (const part of peer.transcript) hash.update(part);
		return hash.digest();
	}

	/** Our last flight, in fresh records (a repeat with old sequence numbers would be taken for a replay). */
	#sendFlight(peer: Peer): void {
		const records = peer.state === "connected"
			? [this.#record(peer, contentType.changeCipherSpec, 0, Buffer.of(1)), this.#record(peer, contentType.handshake, 1, peer.flight[0])]
			: peer.flight.map((part) => this.#record(peer, contentType.handshake, 0, part));
		this.#socket.send(Buffer.concat(records), peer.port, peer.address);
		// Flight 4 goes again until a Finished we can read comes: a client with another key sees only that.
		if (peer.state === "connected" || this.#options.repeatFlights === false) return;
		clearTimeout(peer.timer);
		if (peer.repeats >= maxRepeats) return this.#forget(peer);
		peer.timer = setTimeout(() => {
			peer.repeats++;
			this.#sendFlight(peer);
		}, 1000 * 2 ** peer.repeats);
		peer.timer.unref();
	}

	#record(peer: Peer, type: number, epoch: number, plaintext: Buffer): Buffer {
		const sequence = peer.writeSequence[epoch]++;
		const sequenceBytes = Buffer.concat([uint(epoch, 2), uint(sequence, 6)]);
		if (epoch === 0) return Buffer.concat([Buffer.of(type), dtls12, sequenceBytes, uint(plaintext.length, 2), plaintext]);
		const cipher = createCipheriv("aes-128-ccm", peer.keys!.serverKey, Buffer.concat([peer.keys!.serverIv, sequenceBytes]), { authTagLength: 8 });
		cipher.setAAD(Buffer.concat([sequenceBytes, Buffer.of(type), dtls12, uint(plaintext.length, 2)]), { plaintextLength: plaintext.length });
		const sealed = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
		return Buffer.concat([Buffer.of(type), dtls12, sequenceBytes, uint(8 + sealed.length, 2), sequenceBytes, sealed]);
	}

	/** An epoch-1 record's plaintext, or undefined when it is not authentic or a replay. */
	#open(peer: Peer, header: Buffer, sequence: number, fragment: Buffer): Buffer | undefined {
		if (!peer.keys || fragment.length < 16) return undefined;
		const number = BigInt(sequence);
		if (number <= peer.highest && (number < peer.highest - 63n || (peer.seen >> (peer.highest - number)) & 1n)) return undefined;
		const length = fragment.length - 16, sequenceBytes = header.subarray(3, 11);
		try {
			const decipher = createDecipheriv("aes-128-ccm", peer.keys.clientKey, Buffer.concat([peer.keys.clientIv, fragment.subarray(0, 8)]), { authTagLength: 8 });
			decipher.setAuthTag(fragment.subarray(8 + length));
			decipher.setAAD(Buffer.concat([sequenceBytes, header.subarray(0, 3), uint(length, 2)]), { plaintextLength: length });
			const plaintext = decipher.update(fragment.subarray(8, 8 + length));
			decipher.final();
			if (number > peer.highest) {
				peer.seen = ((peer.seen << (number - peer.highest)) | 1n) & 0xffffffffffffffffn;
				peer.highest = number;
			}
			else peer.seen |= 1n << (peer.highest - number);
			return plaintext;
		}
		catch {
			return undefined;
		}
	}

	#alert(peer: Peer, level: number, description: number): void {
		const epoch = peer.state === "flight4" || !peer.keys ? 0 : 1;
		this.#socket.send(this.#record(peer, contentType.alert, epoch, Buffer.of(level, description)), peer.port, peer.address);
	}

	#forget(peer: Peer): void {
		clearTimeout(peer.timer);
		const key = `${peer.address}:${peer.port}`;
		if (this.#peers.get(key) === peer) this.#peers.delete(key);
	}
}

/**
	The plaintext side, for a server built on dgram sockets (the `coap` library checks `instanceof dgram.Socket`
	before it answers a repeated request from its cache): send, address, close and the "message" event.
*/
class PlaintextSocket extends EventEmitter {
	readonly type = "udp4";
	readonly #server: DtlsServer;

	constructor(server: DtlsServer) {
		super();
		this.#server = server;
	}

	send(buffer: Buffer, ...rest: unknown[]): void {
		// (buffer, offset, length, port, address, callback) or (buffer, port, address, callback)
		const [offset, length, port, address, callback] = typeof rest[2] === "number"
			? rest as [number, number, number, string, ((error: Error | null) => void)?]
			: [0, buffer.length, rest[0] as number, rest[1] as string, rest[2] as ((error: Error | null) => void) | undefined];
		this.#server.send(buffer.subarray(offset, offset + length), address, port);
		if (callback) setImmediate(() => callback(null));
	}

	address(): { address: string; family: string; port: number } {
		return { address: this.#server.host, family: "IPv4", port: this.#server.port };
	}

	close(callback?: () => void): void {
		void this.#server.close().then(() => callback?.());
	}

	ref(): this {
		return this;
	}

	unref(): this {
		return this;
	}
}
Object.setPrototypeOf(PlaintextSocket.prototype, dgram.Socket.prototype);
