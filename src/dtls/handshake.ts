/*
	DTLS 1.2 handshake messages for the PSK profile (RFC 6347 §4.2.2, RFC 4279): the 12-byte header — type,
	length, message_seq, fragment offset and length — what the client writes (ClientHello, ClientKeyExchange,
	Finished) and reads (HelloVerifyRequest, ServerHello, ServerKeyExchange), and the reassembly of one
	message from fragments arriving in any order, in a buffer of fixed size.
*/

export const HandshakeType = {
	helloRequest: 0, clientHello: 1, serverHello: 2, helloVerifyRequest: 3, newSessionTicket: 4, certificate: 11,
	serverKeyExchange: 12, certificateRequest: 13, serverHelloDone: 14, clientKeyExchange: 16, finished: 20,
} as const;
export const handshakeHeaderBytes = 12;
/** TLS_PSK_WITH_AES_128_CCM_8 (RFC 6655), the one suite RFC 7925 asks of PSK clients. */
export const pskAes128Ccm8 = 0xc0a8;
/** TLS_EMPTY_RENEGOTIATION_INFO_SCSV (RFC 5746): says we never renegotiate, which some servers insist on. */
const renegotiationScsv = 0x00ff;
export const randomBytes = 32;
export const verifyDataBytes = 12;
export const maxMessageBytes = 1024;

export interface Fragment {
	type: number;
	length: number;
	sequence: number;
	offset: number;
	fragmentLength: number;
	/** Where the fragment's bytes start in the record. */
	start: number;
}

/** Reads the fragment at `at` of a handshake record ending at `end`; undefined when malformed. */
export function readFragment(bytes: Uint8Array, at: number, end: number, into: Fragment): Fragment | undefined {
	if (end - at < handshakeHeaderBytes) return undefined;
	into.type = bytes[at];
	into.length = uint24(bytes, at + 1);
	into.sequence = (bytes[at + 4] << 8) | bytes[at + 5];
	into.offset = uint24(bytes, at + 6);
	into.fragmentLength = uint24(bytes, at + 9);
	into.start = at + handshakeHeaderBytes;
	if (into.start + into.fragmentLength > end || into.offset + into.fragmentLength > into.length) return undefined;
	return into;
}

function uint24(bytes: Uint8Array, at: number): number {
	return (bytes[at] << 16) | (bytes[at + 1] << 8) | bytes[at + 2];
}

/** Writes a whole (unfragmented) message's header; returns where its body starts. */
export function writeHandshakeHeader(into: Uint8Array, at: number, type: number, sequence: number, length: number): number {
	into[at] = type;
	into[at + 1] = into[at + 6] = into[at + 7] = into[at + 8] = into[at + 9] = 0;
	into[at + 2] = into[at + 10] = length >> 8;
	into[at + 3] = into[at + 11] = length & 0xff;
	into[at + 4] = sequence >> 8;
	into[at + 5] = sequence & 0xff;
	return at + handshakeHeaderBytes;
}

/** A ClientHello (header and body) at `at`; its whole length. */
export function writeClientHello(into: Uint8Array, at: number, sequence: number, random: Uint8Array, cookie: Uint8Array): number {
	const bodyLength = 2 + randomBytes + 1 + 1 + cookie.length + 2 + 4 + 2;
	let p = writeHandshakeHeader(into, at, HandshakeType.clientHello, sequence, bodyLength);
	into[p++] = 254;
	into[p++] = 253;
	into.set(random, p);
	p += randomBytes;
	into[p++] = 0; // no session id: every handshake is a full one
	into[p++] = cookie.length;
	into.set(cookie, p);
	p += cookie.length;
	for (const value of [0, 4, pskAes128Ccm8 >> 8, pskAes128Ccm8 & 0xff, renegotiationScsv >> 8, renegotiationScsv & 0xff, 1, 0]) into[p++] = value;
	return p - at;
}

/** A ClientKeyExchange naming the PSK identity; its whole length. */
export function writeClientKeyExchange(into: Uint8Array, at: number, sequence: number, identity: Uint8Array): number {
	let p = writeHandshakeHeader(into, at, HandshakeType.clientKeyExchange, sequence, 2 + identity.length);
	into[p++] = identity.length >> 8;
	into[p++] = identity.length & 0xff;
	into.set(identity, p);
	return p + identity.length - at;
}

/** The cookie of a HelloVerifyRequest body, or undefined when malformed. */
export function helloVerifyCookie(body: Uint8Array): Uint8Array | undefined {
	if (body.length < 3 || body.length < 3 + body[2]) return undefined;
	return body.slice(3, 3 + body[2]);
}

export interface ServerHello {
	major: number;
	minor: number;
	random: Uint8Array;
	cipherSuite: number;
	compression: number;
}

export function parseServerHello(body: Uint8Array): ServerHello | undefined {
	if (body.length < 2 + randomBytes + 1) return undefined;
	const sessionIdLength = body[2 + randomBytes], at = 2 + randomBytes + 1 + sessionIdLength;
	if (sessionIdLength > 32 || body.length < at + 3) return undefined;
	return {
		major: body[0], minor: body[1], random: body.slice(2, 2 + randomBytes),
		cipherSuite: (body[at] << 8) | body[at + 1], compression: body[at + 2],
	};
}

/**
	One handshake message put together from its fragments. Bytes are marked as they arrive, so overlapping and
	repeated fragments do no harm; the message is whole when every byte of it has come.
*/
export class Reassembly {
	readonly body = new Uint8Array(maxMessageBytes);
	readonly #have = new Uint8Array(maxMessageBytes);
	type = -1;
	sequence = -1;
	length = 0;
	#missing = 0;

	/** Takes a fragment of the message `fragment.sequence`; false when it cannot belong to it or is too large. */
	add(fragment: Fragment, bytes: Uint8Array): boolean {
		if (fragment.length > maxMessageBytes) return false;
		if (fragment.sequence !== this.sequence) {
			this.type = fragment.type;
			this.sequence = fragment.sequence;
			this.length = fragment.length;
			this.#missing = fragment.length;
			this.#have.fill(0, 0, fragment.length);
		}
		else if (fragment.type !== this.type || fragment.length !== this.length) return false;
		for (let i = 0; i < fragment.fragmentLength; i++) {
			const at = fragment.offset + i;
			if (this.#have[at]) continue;
			this.#have[at] = 1;
			this.body[at] = bytes[fragment.start + i];
			this.#missing--;
		}
		return true;
	}

	get complete(): boolean {
		return this.sequence >= 0 && this.#missing === 0;
	}

	/** Forgets the message (it was processed). */
	clear(): void {
		this.sequence = -1;
	}
}
