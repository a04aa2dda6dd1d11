/*
	The resume decision: what to ask the server for, and what its answer means for the bytes on flash.

	Request: with a checkpoint (offset N > 0) and a strong ETag, ask `Range: bytes=N-` with `If-Range: <ETag>`,
	so a changed file comes back whole (200) in the same round trip. Without a strong validator never resume
	blind: ask for the whole file. A strong validator is an RFC 9110 entity-tag, "…" of visible characters, of
	at most maxEtagBytes: anything else (a CR, a control, an overlong tag) is never stored nor sent back.

	Answer                                        Decision
	  206, Content-Range N-(size-1)/size,           resume at N
	    same size, the same strong ETag
	  206 that does not match the above             restart (ask again from 0: the server lied or changed)
	  200                                           fresh: this body is the file from byte 0
	  200 or 206 with a Content-Encoding            fail with 6 before a byte is written (the agent asks for
	    other than identity                           identity: a compressed body is not the image)
	  412 (validator no longer matches)             restart
	  416 whose Content-Range size is N         complete: everything is already on flash
	  416 otherwise                                 restart
	  301 302 303 307 308 with Location             redirect (the caller bounds the count)
	  408 429 5xx                                   retry later (transient; Retry-After honoured within the backoff bounds)
	  other 4xx                                     fail with 7 (invalid URI)

	CoAP pull (coap://, RFC 7252 with Block2, RFC 7959): every block is its own request for block N of size S,
	and every answer carries the ETag option of the representation it slices. The checkpoint's ETag is the
	hex of that option (1–8 bytes). The first answer of a run decides:
	  2.05, block N = checkpoint / S, the checkpoint's ETag         resume at the checkpoint
	  2.05 at a checkpoint > 0 with another ETag, or none          restart (another file, or one not provable)
	  2.05, block 0 (from the start)                               fresh
	  2.05 of another block than asked                             restart
	  5.xx (5.03 with Max-Age), no answer after CoAP's retries     retry later
	  4.xx                                                         fail with 7 (invalid URI)
	  other codes                                                  fail with 9 (unsupported protocol)
	Later answers must carry the same ETag and the block asked for; otherwise the file changed under the
	download: restart.
*/

import { Result, type ResultCode } from "./firmware-object";
import { maxEtagBytes } from "./record";
import { utf8Length } from "../lib/utf8";
import { Code, codeName } from "../coap/message";

export interface Checkpoint {
	/** Bytes of the file known to be on flash. */
	committed: number;
	/** The ETag the checkpoint's bytes came with, verbatim ("" when none or weak). */
	etag: string;
	/** Total size of the file the checkpoint belongs to (0 when unknown). */
	totalSize: number;
}

export interface ServerAnswer {
	status: number;
	etag: string | undefined;
	contentEncoding: string | undefined;
	contentRange: string | undefined;
	contentLength: number | undefined;
	location: string | undefined;
}

export type Decision =
	| { kind: "resume"; from: number; totalSize: number }
	| { kind: "fresh"; totalSize: number }
	| { kind: "restart"; reason: string }
	| { kind: "complete" }
	| { kind: "redirect"; location: string }
	| { kind: "retry"; reason: string }
	| { kind: "fail"; result: ResultCode; reason: string };

/**
	RFC 9110 §8.8.3: opaque-tag = DQUOTE *etagc DQUOTE; etagc = %x21 / %x23-7E / obs-text. No W/ prefix. A fresh
	RegExp per call, not a module constant (a preloaded RegExp: see url.ts).
*/
export function isStrongEtag(etag: string | undefined): etag is string {
	return etag !== undefined && /^"[\x21\x23-\x7e\x80-\uffff]*"$/.test(etag) && utf8Length(etag) <= maxEtagBytes;
}

/**
	Headers (Moddable's flat name, value list) for a request that continues from `checkpoint`. Without
	Accept-Encoding a server may send any content coding (RFC 9110 §12.5.3): the image is wanted as it is.
*/
export function requestHeaders(checkpoint: Checkpoint): string[] {
	if (asksRange(checkpoint))
		return ["Accept-Encoding", "identity", "Range", `bytes=${checkpoint.committed}-`, "If-Range", checkpoint.etag];
	return ["Accept-Encoding", "identity"];
}

/** Whether requestHeaders asks for a range: only then may a 206 or 416 be trusted. */
export function asksRange(checkpoint: Checkpoint): boolean {
	return checkpoint.committed > 0 && isStrongEtag(checkpoint.etag);
}

export interface ContentRange {
	first: number;
	last: number;
	size: number;
}

// Parses "bytes first-last/size" or "bytes */size" (first = last = -1); undefined when malformed.
export function parseContentRange(value: string | undefined): ContentRange | undefined {
	if (value === undefined) return undefined;
	const match = /^\s*bytes\s+(?:(\d{1,15})-(\d{1,15})|\*)\/(\d{1,15})\s*$/i.exec(value);
	if (!match) return undefined;
	const size = Number(match[3]);
	if (match[1] === undefined) return { first: -1, last: -1, size };
	const first = Number(match[1]), last = Number(match[2]);
	if (first > last || last >= size) return undefined;
	return { first, last, size };
}

export function decide(checkpoint: Checkpoint, answer: ServerAnswer): Decision {
	const { status } = answer;
	const ranged = asksRange(checkpoint);
	const encoding = answer.contentEncoding?.trim().toLowerCase();
	if ((status === 200 || status === 206) && encoding && encoding !== "identity")
		return { kind: "fail", result: Result.unsupportedPackage, reason: `content-encoding ${encoding.slice(0, 32).replace(/[^\x21-\x7e]/g, "?")}` };
	if (status === 200)
		return { kind: "fresh", totalSize: answer.contentLength ?? 0 };
	if (status === 206) {
		if (!ranged) return { kind: "restart", reason: "unasked partial content" };
		const range = parseContentRange(answer.contentRange);
		if (!range || range.first !== checkpoint.committed || range.last !== range.size - 1)
			return { kind: "restart", reason: "content-range does not continue the checkpoint" };
		if (checkpoint.totalSize && range.size !== checkpoint.totalSize)
			return { kind: "restart", reason: "size changed" };
		// Only the validator proves this is the checkpoint's file: a 206 without it may be another file's tail.
		if (answer.etag !== checkpoint.etag)
			return { kind: "restart", reason: answer.etag === undefined ? "partial content without etag" : "etag changed" };
		if (answer.contentLength !== undefined && answer.contentLength !== range.last - range.first + 1)
			return { kind: "restart", reason: "content-length does not match content-range" };
		return { kind: "resume", from: range.first, totalSize: range.size };
	}
	if (status === 412)
		return { kind: "restart", reason: "etag changed" };
	if (status === 416) {
		const range = parseContentRange(answer.contentRange);
		if (ranged && range && range.size === checkpoint.committed && (!checkpoint.totalSize || range.size === checkpoint.totalSize))
			return { kind: "complete" };
		return { kind: "restart", reason: "range not satisfiable" };
	}
	if (status === 301 || status === 302 || status === 303 || status === 307 || status === 308) {
		if (answer.location) return { kind: "redirect", location: answer.location };
		return { kind: "fail", result: Result.invalidUri, reason: "redirect without location" };
	}
	if (status === 408 || status === 429 || (status >= 500 && status <= 599))
		return { kind: "retry", reason: `status ${status}` };
	return { kind: "fail", result: Result.invalidUri, reason: `status ${status}` };
}

export interface BlockAnswer {
	/** CoAP response code (class × 32 + detail). */
	code: number;
	/** Hex of the ETag option, undefined without one. */
	etag: string | undefined;
	/** Byte offset of the block answered (block number × block size). */
	offset: number;
}

const coapClientErrors = 128, coapServerErrors = 160;

/** The decision for the first answer of a CoAP pull run that asked for the block at `checkpoint.committed`. */
export function decideBlock(checkpoint: Checkpoint, answer: BlockAnswer): Decision {
	const { code } = answer;
	if (code >= coapServerErrors && code < coapServerErrors + 32) return { kind: "retry", reason: `coap ${codeName(code)}` };
	if (code >= coapClientErrors && code < coapServerErrors) return { kind: "fail", result: Result.invalidUri, reason: `coap ${codeName(code)}` };
	if (code !== Code.content) return { kind: "fail", result: Result.unsupportedProtocol, reason: `coap ${codeName(code)}` };
	if (answer.offset !== checkpoint.committed) return { kind: "restart", reason: "block not the one asked" };
	if (checkpoint.committed === 0) return { kind: "fresh", totalSize: 0 };
	if (answer.etag === undefined || answer.etag !== checkpoint.etag)
		return { kind: "restart", reason: answer.etag === undefined ? "block without etag" : "etag changed" };
	return { kind: "resume", from: checkpoint.committed, totalSize: checkpoint.totalSize };
}
