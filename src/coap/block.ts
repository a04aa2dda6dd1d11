/*
	Block-wise transfers on the server side (RFC 7959): serving a representation in Block2 slices, and
	following a Block1 upload part by part so each part can be written where it belongs as it arrives.
*/

import { Code, Option, blockBytes, blockSize, uintBytes, type Block, type CoapOption } from "./message";

/** Header, token and options a block reply needs besides its payload. */
const replyOverhead = 128;

/** The largest block size exponent whose blocks fit a message of `maxMessageBytes` (1152 → 6, 1024 bytes). */
export function defaultSzx(maxMessageBytes: number): number {
	let szx = 6;
	while (szx > 0 && blockSize(szx) + replyOverhead > maxMessageBytes) szx--;
	return szx;
}

export interface BlockReply {
	/** A view into the representation. */
	payload: Uint8Array;
	/** Block2 and Size2, or none when the whole representation fits and no block was asked for. */
	options: CoapOption[];
}

/**
	The slice of `representation` answering a request with Block2 option `requested` (its parsed value, or
	undefined when it had none). A smaller szx than asked for is honoured; a larger one is lowered to `maxSzx`,
	with the block number scaled to the same offset (§2.4). undefined when the block lies past the end: the
	caller answers 4.02 Bad Option.
*/
export function block2Reply(representation: Uint8Array, requested: Block | undefined, maxSzx: number): BlockReply | undefined {
	if (!requested && representation.length <= blockSize(maxSzx)) return { payload: representation, options: [] };
	const szx = requested ? Math.min(requested.szx, maxSzx) : maxSzx;
	const num = requested ? requested.num << (requested.szx - szx) : 0;
	const size = blockSize(szx), offset = num * size;
	if (offset > 0 && offset >= representation.length) return undefined;
	const end = Math.min(offset + size, representation.length);
	const block: Block = { num, more: end < representation.length, szx };
	return {
		payload: representation.subarray(offset, end),
		options: [{ number: Option.block2, value: blockBytes(block) }, { number: Option.size2, value: uintBytes(representation.length) }],
	};
}

export type Block1Part = "in-order" | "duplicate" | "out-of-order";

/**
	Follows one Block1 upload by byte offset, so a client may lower the block size between parts. Block 0
	(re)starts the upload; a part again at the last one's offset is a duplicate (its 2.31 was lost: answer it
	again without writing); any other offset, or a part before the last one shorter than its block size, is
	out of order (4.08 Request Entity Incomplete).
*/
export class Block1Receiver {
	/** Bytes received in order so far: where the next part must start. */
	received = 0;
	#lastOffset = -1;

	part(block: Block, length: number): Block1Part {
		const size = blockSize(block.szx), offset = block.num * size;
		if (block.more && length !== size) return "out-of-order";
		if (offset === this.#lastOffset && offset + length === this.received) return "duplicate";
		if (offset !== (block.num === 0 ? 0 : this.received)) return "out-of-order";
		this.#lastOffset = offset;
		this.received = offset + length;
		return "in-order";
	}

	/** Byte offset of the last in-order part: where its payload goes. */
	get offset(): number {
		return this.#lastOffset;
	}

	reset(): void {
		this.received = 0;
		this.#lastOffset = -1;
	}
}

/**
	Gathers the parts of a Block1 request body for a resource that takes it only whole (RFC 7959 §2.3): a
	partial body is never handed on. One upload at a time, named by `key` (peer, method, path); at most
	`limit` bytes. The buffer exists only while an upload of more than one part is under way.
	  block 0, no more parts      the body is the payload itself (no buffer)
	  block 0, more parts         starts over (Size1 above the limit: 4.13 at once), 2.31
	  the next part               kept, 2.31; the last one hands on the body
	  the part just kept, again   2.31 (its answer was lost)
	  any other part, another key 4.08 Request Entity Incomplete
	  past the limit              4.13 Request Entity Too Large: the upload ends (its answer carries Size1)
*/
export class Block1Assembly {
	readonly limit: number;
	#parts = new Block1Receiver();
	#buffer: Uint8Array | undefined;
	#key = "";

	constructor(limit: number) {
		this.limit = limit;
	}

	/** The whole body once its last part came, or the code to answer this part with. */
	part(key: string, block: Block, payload: Uint8Array, size1: number | undefined): Uint8Array | number {
		if (block.num === 0) {
			this.reset();
			if ((size1 ?? 0) > this.limit || payload.length > this.limit) return Code.requestEntityTooLarge;
			if (!block.more) return payload;
			this.#key = key;
			this.#buffer = new Uint8Array(this.limit);
		}
		const buffer = this.#buffer;
		if (!buffer || key !== this.#key) return Code.requestEntityIncomplete;
		const part = this.#parts.part(block, payload.length);
		if (part === "out-of-order") return Code.requestEntityIncomplete;
		if (part === "duplicate") return Code.continue;
		if (this.#parts.received > this.limit) {
			this.reset();
			return Code.requestEntityTooLarge;
		}
		buffer.set(payload, this.#parts.offset);
		if (block.more) return Code.continue;
		const body = buffer.subarray(0, this.#parts.received);
		this.reset();
		return body;
	}

	/** Drops the upload under way (its buffer with it). */
	reset(): void {
		this.#parts.reset();
		this.#buffer = undefined;
		this.#key = "";
	}
}
