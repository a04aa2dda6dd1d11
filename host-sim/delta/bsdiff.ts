/*
	bsdiff's differencing (Colin Percival, "Naive differences of executable code", 2003) as the uncompressed
	stream of a detools sequential patch (src/delta/bsdiff-apply.ts reads it): a data-format size of 0, then
	triples — diff size and bytes (new − old, byte-wise), extra size and bytes (new as it is), an adjustment of
	the old position — until the new image is complete.

	The search walks the new image; at each position it finds the longest exact match in the old one (binary
	search over the old image's suffix array) and counts how many of those bytes the current alignment (the
	last match's offset) already gets right. A match that is exact where the alignment is, or beats it by more
	than 8 bytes, starts a new alignment: the previous one is then extended forward, the new one backward (each
	as far as more than half the bytes agree), their overlap split where the agreement is best, and the gap
	between them becomes extra bytes.
*/

import { ByteWriter } from "./byte-writer";
import { suffixArray } from "./suffix-array";

/** How many more bytes a match must get right than the current alignment to start a new one. */
const betterBy = 8;

/** Finds the longest match of next[from…] in old: sets `found` to its old position and length. */
class MatchFinder {
	readonly found = { position: 0, length: 0 };
	#old: Uint8Array;
	#order: Int32Array;

	constructor(old: Uint8Array) {
		this.#old = old;
		this.#order = suffixArray(old);
	}

	find(next: Uint8Array, from: number): void {
		const old = this.#old, order = this.#order, found = this.found;
		found.position = found.length = 0;
		if (order.length === 0) return;
		// Bisect to the two neighbouring suffixes between which next[from…] sorts; the longest match is one of them.
		let low = 0, high = order.length - 1;
		while (high - low > 1) {
			const middle = (low + high) >>> 1;
			if (compare(old, order[middle], next, from) < 0) low = middle;
			else high = middle;
		}
		for (const candidate of [order[low], order[high]]) {
			const length = agreeing(old, candidate, next, from);
			if (length > found.length) [found.position, found.length] = [candidate, length];
		}
	}
}

/** The length of the common prefix of old[a…] and next[b…]. */
function agreeing(old: Uint8Array, a: number, next: Uint8Array, b: number): number {
	const limit = Math.min(old.length - a, next.length - b);
	let i = 0;
	while (i < limit && old[a + i] === next[b + i]) i++;
	return i;
}

/** old[a…] against next[b…] in suffix order: negative, 0 or positive (an ended string sorts first). */
function compare(old: Uint8Array, a: number, next: Uint8Array, b: number): number {
	const i = agreeing(old, a, next, b);
	if (a + i === old.length) return b + i === next.length ? 0 : -1;
	if (b + i === next.length) return 1;
	return old[a + i] - next[b + i];
}

/** The uncompressed detools sequential stream that turns `old` into `next`. */
export function bsdiffStream(old: Uint8Array, next: Uint8Array): Uint8Array {
	const out = new ByteWriter(next.length + 1024);
	out.size(0);
	const finder = new MatchFinder(old), found = finder.found;
	const oldSize = old.length, newSize = next.length;
	let scan = 0, length = 0, position = 0;
	let lastScan = 0, lastPosition = 0, lastOffset = 0;
	const agreesAt = (at: number) => at + lastOffset < oldSize && at + lastOffset >= 0 && old[at + lastOffset] === next[at];

	while (scan < newSize) {
		let alignedScore = 0;
		let counted = (scan += length);
		for (; scan < newSize; scan++) {
			finder.find(next, scan);
			[position, length] = [found.position, found.length];
			for (; counted < scan + length; counted++) if (agreesAt(counted)) alignedScore++;
			if ((length === alignedScore && length !== 0) || length > alignedScore + betterBy) break;
			if (agreesAt(scan)) alignedScore--;
		}
		if (length === alignedScore && scan !== newSize) continue;

		// Extend the last alignment forward from lastScan while more than half its bytes agree.
		let forward = 0;
		for (let i = 0, agree = 0, best = 0; lastScan + i < scan && lastPosition + i < oldSize;) {
			if (old[lastPosition + i] === next[lastScan + i]) agree++;
			i++;
			if (agree * 2 - i > best * 2 - forward) [best, forward] = [agree, i];
		}
		// And the new one backward from scan.
		let backward = 0;
		if (scan < newSize) {
			for (let i = 1, agree = 0, best = 0; scan >= lastScan + i && position >= i; i++) {
				if (old[position - i] === next[scan - i]) agree++;
				if (agree * 2 - i > best * 2 - backward) [best, backward] = [agree, i];
			}
		}
		// Where they overlap, split at the point that keeps the most agreeing bytes.
		if (lastScan + forward > scan - backward) {
			const overlap = lastScan + forward - (scan - backward);
			let agree = 0, best = 0, split = 0;
			for (let i = 0; i < overlap; i++) {
				if (next[lastScan + forward - overlap + i] === old[lastPosition + forward - overlap + i]) agree++;
				if (next[scan - backward + i] === old[position - backward + i]) agree--;
				if (agree > best) [best, split] = [agree, i + 1];
			}
			forward += split - overlap;
			backward -= split;
		}

		out.size(forward);
		const diff = out.reserve(forward);
		for (let i = 0, at = out.length; i < forward; i++) diff[at + i] = (next[lastScan + i] - old[lastPosition + i]) & 0xff;
		out.advance(forward);
		const extraStart = lastScan + forward, extraEnd = scan - backward;
		out.size(extraEnd - extraStart);
		out.bytes(next.subarray(extraStart, extraEnd));
		out.size(scan < newSize ? position - backward - (lastPosition + forward) : 0);

		lastScan = scan - backward;
		lastPosition = position - backward;
		lastOffset = position - scan;
	}
	return out.result();
}
