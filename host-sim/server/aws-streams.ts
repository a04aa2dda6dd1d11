/*
	AWS IoT MQTT-based file delivery, as its documentation describes it:
	  $aws/things/T/streams/S/get/{json|cbor}       {c?, s?, f, l, o?, n?, b?} → one data/{fmt} message per block
	                                                 {c?, f, l, i, p} (p base64 in JSON, bytes in CBOR)
	  $aws/things/T/streams/S/describe/{json|cbor}  {c?} → description/{fmt} {c?, s, d, r: [{f, z}]}
	  errors on rejected/{fmt}: {o: code, m: message, c?} (the documented short form; "long" gives
	  {code, message, clientToken}, which the service may also send "for backward compatibility").
	Limits: block size 256..131072 bytes, offset and count 0..98304, bitmap under 12,288 bytes, client token
	≤ 64 bytes. A request for more than 128 KB is not refused: only the first 128 KB of blocks are sent.
	Bitmap: bit k of byte j asks for block o + 8j + k (hex string in JSON, "0x" optional; byte string in CBOR).
*/

import { decodeCbor, encodeCbor, type CborValue } from "./cbor";

export type StreamFormat = "json" | "cbor";

export interface Stream {
	streamId: string;
	version: number;
	description: string;
	files: Map<number, Uint8Array>;
}

export interface StreamStats {
	/** GetStream requests received, refused ones included. */
	requests: number;
	describes: number;
	blocksServed: number;
	bytesServed: number;
	rejected: number;
}

export const minBlockSize = 256;
export const maxBlockSize = 131072;
export const maxRequestBytes = 131072;
const maxOffset = 98304;
const maxBitmapBytes = 12288;
const maxClientTokenBytes = 64;

/** A data message the service is about to publish: one block of one file, answering a GetStream request. */
export interface BlockMessage {
	topic: string;
	format: StreamFormat;
	streamId: string;
	fileId: number;
	index: number;
	/** The block's bytes: a view into the stream's file, so copy before changing. */
	bytes: Uint8Array;
	/** The message as it would be published. */
	message: Uint8Array;
}

/** Faults on the blocks themselves, read afresh for each block. */
export interface StreamFaults {
	/** Tests only: the messages to publish in place of a block's, in order ([] sends none); undefined keeps it. */
	corruptBlocks?: (block: BlockMessage) => Uint8Array[] | undefined;
}

type Request = { [key: string]: CborValue };
class Refusal extends Error {
	constructor(readonly code: string, message: string, readonly echoToken = true) {
		super(message);
	}
}

export class StreamsService {
	readonly streams = new Map<string, Stream>();
	readonly stats: StreamStats = { requests: 0, describes: 0, blocksServed: 0, bytesServed: 0, rejected: 0 };
	/** GetStream requests per thing, refused ones included. */
	readonly requestsByThing = new Map<string, number>();
	/** "short" sends {o, m, c} as documented; "long" the older {code, message, clientToken}. */
	errorFields: "short" | "long" = "short";
	#send: (topic: string, payload: Uint8Array) => void;
	#faults: StreamFaults;

	constructor(send: (topic: string, payload: Uint8Array) => void, faults: StreamFaults = {}) {
		this.#send = send;
		this.#faults = faults;
	}

	/** Creates a stream or replaces its files; each replacement raises its version. */
	put(streamId: string, files: Map<number, Uint8Array>, description = ""): Stream {
		checkStreamIds(streamId, [...files.keys()]);
		const old = this.streams.get(streamId);
		const stream = { streamId, version: (old?.version ?? 0) + 1, description: description || old?.description || "", files: new Map(files) };
		this.streams.set(streamId, stream);
		return stream;
	}

	/** Handles one device request; false when the topic is not a stream request topic. */
	handle(topic: string, payload: Uint8Array): boolean {
		const match = /^\$aws\/things\/([^/]+)\/streams\/([^/]+)\/(get|describe)\/(json|cbor)$/.exec(topic);
		if (!match) return false;
		const [, thing, streamId, operation, format] = match as unknown as [string, string, string, "get" | "describe", StreamFormat];
		const base = `$aws/things/${thing}/streams/${streamId}`;
		if (operation === "get") {
			this.stats.requests++;
			this.requestsByThing.set(thing, (this.requestsByThing.get(thing) ?? 0) + 1);
		}
		else this.stats.describes++;
		let request: Request = {};
		try {
			request = decode(payload, format);
			const token = request.c;
			if (token !== undefined && (typeof token !== "string" || new TextEncoder().encode(token).length > maxClientTokenBytes))
				throw new Refusal("InvalidRequest", "the client token must be a string of at most 64 bytes", false);
			const stream = this.streams.get(streamId);
			if (!stream) throw new Refusal("ResourceNotFound", `no stream ${streamId}`);
			if (operation === "describe") this.#describe(base, format, stream, token);
			else this.#get(base, format, stream, request);
		}
		catch (error) {
			if (!(error instanceof Refusal)) throw error;
			this.stats.rejected++;
			const token = error.echoToken ? request.c : undefined;
			const body: Request = this.errorFields === "short"
				? { o: error.code, m: error.message, ...(token === undefined ? {} : { c: token }) }
				: { code: error.code, message: error.message, ...(token === undefined ? {} : { clientToken: token }) };
			this.#send(`${base}/rejected/${format}`, encode(body, format));
		}
		return true;
	}

	#describe(base: string, format: StreamFormat, stream: Stream, token: CborValue): void {
		const files = [...stream.files].sort(([a], [b]) => a - b).map(([f, bytes]) => ({ f, z: bytes.length }));
		const body: Request = { ...(token === undefined ? {} : { c: token }), s: stream.version, d: stream.description, r: files };
		this.#send(`${base}/description/${format}`, encode(body, format));
	}

	#get(base: string, format: StreamFormat, stream: Stream, request: Request): void {
		const { c: token, s: version, f: fileId, l: blockSize } = request;
		if (version !== undefined && !isInteger(version)) throw new Refusal("InvalidRequest", "s must be an integer");
		if (version !== undefined && version !== stream.version) throw new Refusal("VersionMismatch", `the stream is at version ${stream.version}`);
		if (!isInteger(fileId) || fileId < 0 || fileId > 255) throw new Refusal("InvalidRequest", "f must be a file id from 0 to 255");
		const file = stream.files.get(fileId);
		if (!file) throw new Refusal("ResourceNotFound", `no file ${fileId} in stream ${stream.streamId}`);
		if (!isInteger(blockSize) || blockSize < minBlockSize || blockSize > maxBlockSize)
			throw new Refusal("BlockSizeOutOfBounds", `the block size must be from ${minBlockSize} to ${maxBlockSize}`);
		const offset = request.o ?? 0, count = request.n;
		if (!isInteger(offset) || offset < 0 || offset > maxOffset) throw new Refusal("OffsetOutOfBounds", `the block offset must be from 0 to ${maxOffset}`);
		if (count !== undefined && (!isInteger(count) || count < 0 || count > maxOffset))
			throw new Refusal("BlockCountLimitExceeded", `the block count must be from 0 to ${maxOffset}`);
		const bitmap = request.b === undefined ? undefined : readBitmap(request.b, format);
		const blockCount = Math.ceil(file.length / blockSize);
		if (offset >= blockCount) throw new Refusal("InvalidRequest", "the block offset is out of the range of data available");

		// At most 128 KB of blocks per request; n lowers that, 0 or absent leaves it.
		const budget = Math.min(Math.floor(maxRequestBytes / blockSize), count || Infinity);
		const wanted: number[] = [];
		if (bitmap) {
			for (let bit = 0; bit < bitmap.length * 8 && wanted.length < budget; bit++)
				if (bitmap[bit >> 3] & (1 << (bit & 7)) && offset + bit < blockCount) wanted.push(offset + bit);
		}
		else for (let block = offset; block < blockCount && wanted.length < budget; block++) wanted.push(block);

		for (const block of wanted) {
			const payload = file.subarray(block * blockSize, Math.min(file.length, (block + 1) * blockSize));
			const body: Request = {
				...(token === undefined ? {} : { c: token }), f: fileId, l: payload.length, i: block,
				p: format === "json" ? Buffer.from(payload).toString("base64") : payload,
			};
			this.stats.blocksServed++;
			this.stats.bytesServed += payload.length;
			const topic = `${base}/data/${format}`, message = encode(body, format);
			const sent = this.#faults.corruptBlocks?.({ topic, format, streamId: stream.streamId, fileId, index: block, bytes: payload, message }) ?? [message];
			for (const each of sent) this.#send(topic, each);
		}
	}
}

/** Throws unless the stream id can sit in a topic and every file id is 0..255. */
export function checkStreamIds(streamId: string, fileIds: number[]): void {
	if (!/^[a-zA-Z0-9_-]{1,128}$/.test(streamId)) throw new Error(`bad stream id ${streamId}`);
	for (const fileId of fileIds)
		if (!Number.isInteger(fileId) || fileId < 0 || fileId > 255) throw new Error(`bad file id ${fileId}`);
}

function isInteger(value: unknown): value is number {
	return typeof value === "number" && Number.isInteger(value);
}

function decode(payload: Uint8Array, format: StreamFormat): Request {
	let value: unknown;
	try {
		value = format === "json" ? JSON.parse(Buffer.from(payload).toString("utf8")) : decodeCbor(payload);
	}
	catch {
		throw format === "json" ? new Refusal("InvalidJson", "the request is not valid json") : new Refusal("InvalidCbor", "the request is not valid cbor");
	}
	if (!value || typeof value !== "object" || Array.isArray(value) || value instanceof Uint8Array)
		throw new Refusal("InvalidRequest", "the request must be a map");
	return value as Request;
}

function encode(body: Request, format: StreamFormat): Uint8Array {
	return format === "json" ? Buffer.from(JSON.stringify(body)) : encodeCbor(body);
}

function readBitmap(value: CborValue, format: StreamFormat): Uint8Array {
	let bytes: Uint8Array;
	if (format === "cbor") {
		if (!(value instanceof Uint8Array)) throw new Refusal("InvalidRequest", "b must be a byte string");
		bytes = value;
	}
	else {
		const hex = typeof value === "string" ? value.replace(/^0x/i, "") : "";
		if (!hex || hex.length % 2 || !/^[0-9a-fA-F]+$/.test(hex)) throw new Refusal("InvalidRequest", "b must be a hex string");
		bytes = Buffer.from(hex, "hex");
	}
	if (bytes.length >= maxBitmapBytes) throw new Refusal("BlockBitmapLimitExceeded", `the bitmap must be under ${maxBitmapBytes} bytes`);
	return bytes;
}
