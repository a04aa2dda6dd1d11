/*
	A DTLS 1.2 client session with one server (RFC 6347), PSK only (RFC 4279, the RFC 7925 profile):
	TLS_PSK_WITH_AES_128_CCM_8, no extensions, no resumption, no Connection ID (README: Security).

	  hello     → ClientHello (flight 1; again with the cookie after a HelloVerifyRequest, flight 3)
	              ServerHello, [ServerKeyExchange: the identity hint], ServerHelloDone (flight 4) → keys
	  finishing → ClientKeyExchange, ChangeCipherSpec, Finished (flight 5, the Finished in epoch 1)
	              ChangeCipherSpec, Finished (flight 6) checked → connected
	  connected → application data both ways in epoch 1, each record once (replay window)
	  failed / closed → nothing more; the owner starts a new session to try again.

	A flight is sent again when the next one does not come within the timer — 1 s, doubling to 60 s at most —
	maxRetransmits times, then "dtls: handshake timeout"; a server that repeats the flight we answered gets our
	answer again at once. A server that repeats its last flight badPskRepeats times after our Finished could
	not read it (OpenSSL drops a Finished it cannot decrypt without a word): "dtls: bad psk" then, without
	waiting out the timer — one lost flight of ours costs one repeat, not the diagnosis. A server that answered
	our ClientHello but stays silent through every retransmission of our Finished discarded it too (RFC 6347
	§4.1.2.1; tinydtls repeats nothing): "dtls: bad psk" when the timer gives up. A fatal alert ends the
	session with a short reason; during the handshake a decrypt_error or a bad_record_mac alert, or a wrong
	server Finished mean the two sides hold different keys: "dtls: bad psk". Handshake messages are reassembled from fragments one at a
	time (maxMessageBytes), the transcript kept for the Finished hashes is bounded, and all records are built
	in one send buffer: the memory is fixed per session.
*/

import type { Clock, DtlsCrypto, Logger } from "../platform/ports";
import { dtlsReasons } from "../lib/tls-failure";
import { HmacSha256 } from "./hmac";
import { prf } from "./prf";
import { ReplayWindow } from "./replay-window";
import { ContentType, RecordProtection, headerBytes, protectionBytes, readHeader, writeHeader, type RecordHeader } from "./record";
import {
	HandshakeType, Reassembly, handshakeHeaderBytes, helloVerifyCookie, parseServerHello, pskAes128Ccm8, randomBytes,
	readFragment, verifyDataBytes, writeClientHello, writeClientKeyExchange, writeHandshakeHeader, type Fragment,
} from "./handshake";

export interface PskCredentials {
	identity: Uint8Array;
	key: Uint8Array;
}

export interface DtlsOptions {
	initialTimeoutMs: number;
	maxTimeoutMs: number;
	/** Flights sent again before the handshake gives up. */
	maxRetransmits: number;
	/** Repeats of the server's last flight, after our Finished, that mean it cannot read our Finished: a bad PSK. */
	badPskRepeats: number;
	/** The largest application datagram sent or received. */
	maxPlaintextBytes: number;
}

/**
	RFC 6347 §4.2.4.1's timer; four retransmissions give up after 31 s, before a CoAP request would (45 s). A
	server that repeats its flight twice (its timer: after 1 s, then 2 s more) holds another PSK: known in 3 s.
*/
export const defaultDtlsOptions: DtlsOptions = { initialTimeoutMs: 1000, maxTimeoutMs: 60000, maxRetransmits: 4, badPskRepeats: 2, maxPlaintextBytes: 1280 };

export interface SessionPorts {
	crypto: DtlsCrypto;
	clock: Clock;
	log: Logger;
	/** Sends bytes 0..length of `datagram` to the server. */
	send(datagram: Uint8Array, length: number): void;
}

export interface SessionListener {
	connected(): void;
	data(plaintext: Uint8Array): void;
	/** The session is over: a reason beginning "dtls: ". */
	failed(reason: string): void;
}

type State = "hello" | "finishing" | "connected" | "done";

const AlertDescription = { closeNotify: 0, badRecordMac: 20, handshakeFailure: 40, decryptError: 51, insufficientSecurity: 71, unknownPskIdentity: 115 } as const;
const maxTranscriptBytes = 2048;
const maxCookieRounds = 4;
const masterSecretBytes = 48;

export class DtlsSession {
	readonly #ports: SessionPorts;
	readonly #options: DtlsOptions;
	readonly #credentials: PskCredentials;
	readonly #listener: SessionListener;
	readonly #output: Uint8Array;
	readonly #transcript = new Uint8Array(maxTranscriptBytes);
	#transcriptLength = 0;
	readonly #clientRandom = new Uint8Array(randomBytes);
	#serverRandom: Uint8Array = new Uint8Array(randomBytes);
	#cookie: Uint8Array = new Uint8Array(0);
	#cookieRounds = 0;
	readonly #masterSecret = new Uint8Array(masterSecretBytes);
	readonly #hmac: HmacSha256;
	#write: RecordProtection | undefined;
	#read: RecordProtection | undefined;
	#state: State = "hello";
	/** Next record sequence number per write epoch. */
	readonly #writeSequence = [0, 0];
	#readEpoch = 0;
	readonly #window = new ReplayWindow();
	#messageSequence = 0;
	/** The next server message_seq processed; -1 until the ServerHello tells. */
	#expected = -1;
	readonly #reassembly = new Reassembly();
	/** The client's last flight, kept to send again: its handshake messages, then whether a CCS precedes the last. */
	#flight: Uint8Array[] = [];
	#timer: unknown;
	#timeoutMs: number;
	#retransmits = 0;
	#serverRepeats = 0;
	readonly #header: RecordHeader = { type: 0, epoch: 0, sequence: 0, start: 0, length: 0 };
	readonly #fragment: Fragment = { type: 0, length: 0, sequence: 0, offset: 0, fragmentLength: 0, start: 0 };

	constructor(ports: SessionPorts, options: DtlsOptions, credentials: PskCredentials, listener: SessionListener) {
		this.#ports = ports;
		this.#options = options;
		this.#credentials = credentials;
		this.#listener = listener;
		this.#output = new Uint8Array(options.maxPlaintextBytes + headerBytes + protectionBytes);
		this.#hmac = new HmacSha256(ports.crypto.sha256());
		this.#timeoutMs = options.initialTimeoutMs;
	}

	get connected(): boolean {
		return this.#state === "connected";
	}

	start(): void {
		this.#ports.crypto.random(this.#clientRandom);
		this.#sendClientHello();
	}

	/** Protects and sends one application datagram; false when not connected or too large. */
	send(plaintext: Uint8Array, length: number): boolean {
		if (this.#state !== "connected" || length > this.#options.maxPlaintextBytes) return false;
		this.#output.set(plaintext.subarray(0, length), headerBytes + 8);
		this.#ports.send(this.#output, this.#sealRecord(0, ContentType.applicationData, length));
		return true;
	}

	/** Ends the session; a connected one tells the server with close_notify. No callback follows. */
	close(): void {
		if (this.#state === "connected") this.#sendAlert(1, AlertDescription.closeNotify);
		this.#finish();
	}

	receive(datagram: Uint8Array): void {
		const header = this.#header;
		for (let offset = 0; this.#state !== "done" && readHeader(datagram, offset, header); offset = header.start + header.length) {
			let start = header.start, length = header.length;
			if (header.epoch !== this.#readEpoch) continue; // an old epoch's retransmission, or a record of the next one ahead of its CCS
			if (header.epoch > 0) {
				if (!this.#window.fresh(header.sequence)) continue;
				length = this.#read!.open(datagram, header);
				if (length < 0) continue; // not authentic: dropped (RFC 6347 §4.1.2.7)
				this.#window.mark(header.sequence);
				start += 8;
			}
			switch (header.type) {
				case ContentType.handshake: this.#handshakeRecord(datagram, start, start + length, header.epoch); break;
				case ContentType.changeCipherSpec: this.#changeCipherSpec(); break;
				case ContentType.alert: if (length >= 2) this.#alert(datagram[start], datagram[start + 1]); break;
				case ContentType.applicationData: if (this.#state === "connected") this.#listener.data(datagram.subarray(start, start + length)); break;
			}
		}
	}

	#handshakeRecord(bytes: Uint8Array, at: number, end: number, epoch: number): void {
		const fragment = this.#fragment;
		while (at < end && this.#state !== "done") {
			if (!readFragment(bytes, at, end, fragment)) return this.#fail(dtlsReasons.malformed);
			at = fragment.start + fragment.fragmentLength;
			if (this.#expected >= 0 && fragment.sequence < this.#expected) {
				// The server repeats its flight: ours did not reach it, or our Finished did not verify (a wrong PSK is
				// dropped silently by OpenSSL). Answer with ours again, once per flight it repeats, until the repeats say which.
				if (this.#state === "finishing" && fragment.type === HandshakeType.serverHelloDone) {
					if (++this.#serverRepeats >= this.#options.badPskRepeats) return this.#fail(dtlsReasons.badPsk);
					this.#retransmit();
				}
				continue;
			}
			if (this.#expected >= 0 && fragment.sequence > this.#expected) continue; // ahead of a lost one: it comes again
			if (!this.#reassembly.add(fragment, bytes)) return this.#fail(dtlsReasons.malformed);
			if (!this.#reassembly.complete) continue;
			const reassembly = this.#reassembly, body = reassembly.body.subarray(0, reassembly.length);
			this.#message(reassembly.type, reassembly.sequence, body, epoch);
			reassembly.clear();
		}
	}

	#message(type: number, sequence: number, body: Uint8Array, epoch: number): void {
		// Until the ServerHello sets the numbering, only it and a HelloVerifyRequest mean anything.
		if (this.#expected < 0 && type !== HandshakeType.serverHello && type !== HandshakeType.helloVerifyRequest) return;
		if (this.#state === "hello" && type === HandshakeType.helloVerifyRequest) {
			const cookie = helloVerifyCookie(body);
			if (!cookie || ++this.#cookieRounds > maxCookieRounds) return this.#fail(dtlsReasons.malformed);
			this.#cookie = cookie;
			return this.#sendClientHello();
		}
		if (this.#state === "hello" && type === HandshakeType.serverHello) {
			const hello = parseServerHello(body);
			if (!hello) return this.#fail(dtlsReasons.malformed);
			if (hello.major !== 254 || hello.minor !== 253 || hello.cipherSuite !== pskAes128Ccm8 || hello.compression !== 0)
				return this.#fail(dtlsReasons.unsupported);
			this.#serverRandom = hello.random;
			this.#expected = sequence;
		}
		else if (this.#state === "hello" && type === HandshakeType.serverKeyExchange) { /* the identity hint: ours is provisioned */ }
		else if (this.#state === "hello" && (type === HandshakeType.certificate || type === HandshakeType.certificateRequest))
			return this.#fail(dtlsReasons.certificateWanted);
		else if (this.#state === "hello" && type === HandshakeType.serverHelloDone) {
			this.#record(type, sequence, body);
			this.#expected++;
			if (this.#state === "hello") this.#keysAndFinished();
			return;
		}
		else if (this.#state === "finishing" && type === HandshakeType.newSessionTicket) { /* not asked for; hashed all the same */ }
		else if (this.#state === "finishing" && type === HandshakeType.finished && epoch === 1) return this.#serverFinished(body);
		else return this.#fail(dtlsReasons.malformed);
		this.#record(type, sequence, body);
		this.#expected++;
	}

	#sendClientHello(): void {
		const message = new Uint8Array(handshakeHeaderBytes + 2 + randomBytes + 2 + this.#cookie.length + 8);
		writeClientHello(message, 0, this.#messageSequence++, this.#clientRandom, this.#cookie);
		// The transcript starts with the ClientHello the server answers with its ServerHello (RFC 6347 §4.2.1).
		this.#transcriptLength = 0;
		this.#appendTranscript(message);
		this.#flight = [message];
		this.#newFlight();
	}

	#keysAndFinished(): void {
		const crypto = this.#ports.crypto, psk = this.#credentials.key, identity = this.#credentials.identity;
		// RFC 4279 §2: the premaster secret is N zero bytes and the N-byte PSK, each with its 2-byte length.
		const premaster = new Uint8Array(4 + 2 * psk.length);
		premaster[0] = premaster[2 + psk.length] = psk.length >> 8;
		premaster[1] = premaster[3 + psk.length] = psk.length & 0xff;
		premaster.set(psk, 4 + psk.length);
		prf(this.#hmac, premaster, "master secret", [this.#clientRandom, this.#serverRandom], this.#masterSecret);
		premaster.fill(0);
		const keys = new Uint8Array(40);
		prf(this.#hmac, this.#masterSecret, "key expansion", [this.#serverRandom, this.#clientRandom], keys);
		this.#write = new RecordProtection(crypto.aes128(keys.subarray(0, 16)), keys.subarray(32, 36));
		this.#read = new RecordProtection(crypto.aes128(keys.subarray(16, 32)), keys.subarray(36, 40));
		keys.fill(0);
		const keyExchange = new Uint8Array(handshakeHeaderBytes + 2 + identity.length);
		writeClientKeyExchange(keyExchange, 0, this.#messageSequence++, identity);
		this.#appendTranscript(keyExchange);
		const finished = new Uint8Array(handshakeHeaderBytes + verifyDataBytes);
		this.#verifyData("client finished", finished.subarray(writeHandshakeHeader(finished, 0, HandshakeType.finished, this.#messageSequence++, verifyDataBytes)));
		this.#appendTranscript(finished);
		this.#flight = [keyExchange, finished];
		this.#state = "finishing";
		this.#newFlight();
	}

	#changeCipherSpec(): void {
		if (this.#state !== "finishing" || this.#readEpoch !== 0) return;
		this.#readEpoch = 1;
		this.#window.reset();
	}

	#serverFinished(body: Uint8Array): void {
		const expected = new Uint8Array(verifyDataBytes);
		this.#verifyData("server finished", expected);
		let difference = body.length ^ verifyDataBytes;
		for (let i = 0; i < verifyDataBytes; i++) difference |= expected[i] ^ body[i];
		if (difference) {
			this.#sendAlert(2, AlertDescription.decryptError);
			return this.#fail(dtlsReasons.badPsk);
		}
		this.#ports.clock.clearTimeout(this.#timer);
		this.#timer = undefined;
		this.#flight = [];
		this.#transcriptLength = 0;
		this.#state = "connected";
		this.#listener.connected();
	}

	/** PRF(master_secret, label, SHA-256(handshake messages)), 12 bytes. */
	#verifyData(label: string, into: Uint8Array): void {
		const digest = this.#ports.crypto.sha256(), hash = new Uint8Array(32);
		digest.reset();
		digest.write(this.#transcript.subarray(0, this.#transcriptLength));
		digest.finish(hash);
		prf(this.#hmac, this.#masterSecret, label, [hash], into);
	}

	/** A received message, hashed as if it had come whole (RFC 6347 §4.2.6). */
	#record(type: number, sequence: number, body: Uint8Array): void {
		if (this.#transcriptLength + handshakeHeaderBytes + body.length > maxTranscriptBytes) return this.#fail(dtlsReasons.malformed);
		writeHandshakeHeader(this.#transcript, this.#transcriptLength, type, sequence, body.length);
		this.#transcript.set(body, this.#transcriptLength + handshakeHeaderBytes);
		this.#transcriptLength += handshakeHeaderBytes + body.length;
	}

	#appendTranscript(message: Uint8Array): void {
		if (this.#transcriptLength + message.length > maxTranscriptBytes) return this.#fail(dtlsReasons.malformed);
		this.#transcript.set(message, this.#transcriptLength);
		this.#transcriptLength += message.length;
	}

	#newFlight(): void {
		this.#timeoutMs = this.#options.initialTimeoutMs;
		this.#retransmits = 0;
		this.#sendFlight();
	}

	/** Sends the flight in one datagram (it fits: the PSK flights are small) and arms the timer. */
	#sendFlight(): void {
		if (this.#state === "done") return;
		const output = this.#output;
		let length = 0;
		for (let i = 0; i < this.#flight.length; i++) {
			const message = this.#flight[i];
			if (this.#state === "finishing" && i === this.#flight.length - 1) {
				// ChangeCipherSpec, then the Finished under the new keys.
				writeHeader(output, length, ContentType.changeCipherSpec, 0, this.#nextSequence(0), 1);
				output[length + headerBytes] = 1;
				length += headerBytes + 1;
				output.set(message, length + headerBytes + 8);
				length += this.#sealRecord(length, ContentType.handshake, message.length, 1);
				continue;
			}
			writeHeader(output, length, ContentType.handshake, 0, this.#nextSequence(0), message.length);
			output.set(message, length + headerBytes);
			length += headerBytes + message.length;
		}
		this.#ports.send(output, length);
		this.#ports.clock.clearTimeout(this.#timer);
		this.#timer = this.#ports.clock.setTimeout(() => this.#timedOut(), this.#timeoutMs);
	}

	#timedOut(): void {
		this.#timer = undefined;
		this.#retransmit();
	}

	/** Sends the flight again, or gives up: a server that answered our keys only with silence or its previous flight holds another PSK. */
	#retransmit(): void {
		if (this.#retransmits >= this.#options.maxRetransmits)
			return this.#fail(this.#state === "finishing" ? dtlsReasons.badPsk : dtlsReasons.handshakeTimeout);
		this.#retransmits++;
		this.#timeoutMs = Math.min(this.#timeoutMs * 2, this.#options.maxTimeoutMs);
		this.#sendFlight();
	}

	/** Seals the plaintext at offset + headerBytes + 8 of the output as an epoch-1 record; its length. */
	#sealRecord(offset: number, type: number, length: number, epoch = 1): number {
		return this.#write!.seal(this.#output, offset, type, epoch, this.#nextSequence(epoch), length);
	}

	#nextSequence(epoch: number): number {
		return this.#writeSequence[epoch]++;
	}

	#sendAlert(level: number, description: number): void {
		const output = this.#output;
		if (this.#write && this.#state !== "hello") {
			output[headerBytes + 8] = level;
			output[headerBytes + 9] = description;
			this.#ports.send(output, this.#sealRecord(0, ContentType.alert, 2));
			return;
		}
		writeHeader(output, 0, ContentType.alert, 0, this.#nextSequence(0), 2);
		output[headerBytes] = level;
		output[headerBytes + 1] = description;
		this.#ports.send(output, headerBytes + 2);
	}

	#alert(level: number, description: number): void {
		if (description === AlertDescription.closeNotify) return this.#fail(dtlsReasons.closed);
		// A warning once connected changes nothing; during the handshake every alert ends it (RFC 7925 §10).
		if (level !== 2 && this.#state === "connected") return;
		switch (description) {
			case AlertDescription.badRecordMac:
			case AlertDescription.decryptError: return this.#fail(this.#state === "connected" ? `dtls: alert ${description}` : dtlsReasons.badPsk);
			case AlertDescription.unknownPskIdentity: return this.#fail(dtlsReasons.unknownIdentity);
			case AlertDescription.handshakeFailure:
			case AlertDescription.insufficientSecurity: return this.#fail(dtlsReasons.refused);
			default: return this.#fail(`dtls: alert ${description}`);
		}
	}

	#fail(reason: string): void {
		if (this.#state === "done") return;
		this.#finish();
		this.#listener.failed(reason);
	}

	#finish(): void {
		this.#state = "done";
		this.#ports.clock.clearTimeout(this.#timer);
		this.#timer = undefined;
		this.#masterSecret.fill(0);
		this.#flight = [];
	}
}
