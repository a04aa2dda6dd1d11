/*
	Block-wise transfers on the server side (RFC 7959): serving a representation in Block2 slices, and
	following a Block1 upload part by part so each part can be written where it belongs as it arrives.
*/

import { Option, blockBytes, blockSize, uintBytes, type Block, type CoapOption } from "./message";

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
