/*
	detools' CRLE, as src/delta/crle.ts decodes it: segments of a kind byte and a size (7 bits a byte, least
	significant first, bit 7 "more"); kind 0 "scattered" carries size bytes as they are, kind 1 "repeated" one
	byte to repeat size times. A run becomes a repeated segment when that is shorter than leaving it scattered:
	the segment costs a kind, a size and a value, and splits the scattered bytes around it (one more header).
*/

import { ByteWriter } from "./byte-writer";

const scatteredKind = 0, repeatedKind = 1;
/** Shortest run worth its own segment: inside scattered bytes it costs about 3 + 2 bytes of headers. */
const shortestRun = 6;

function segmentHeader(out: ByteWriter, kind: number, size: number): void {
	out.byte(kind);
	let rest = size;
	while (rest >= 0x80) {
		out.byte((rest & 0x7f) | 0x80);
		rest = Math.floor(rest / 128);
	}
	out.byte(rest);
}

export function crleCompress(input: Uint8Array): Uint8Array {
	const out = new ByteWriter(input.length / 4 + 64);
	let scatteredFrom = 0;
	const flushScattered = (end: number) => {
		if (end === scatteredFrom) return;
		segmentHeader(out, scatteredKind, end - scatteredFrom);
		out.bytes(input.subarray(scatteredFrom, end));
	};
	for (let at = 0; at < input.length;) {
		let end = at + 1;
		while (end < input.length && input[end] === input[at]) end++;
		if (end - at >= shortestRun) {
			flushScattered(at);
			segmentHeader(out, repeatedKind, end - at);
			out.byte(input[at]);
			scatteredFrom = end;
		}
		at = end;
	}
	flushScattered(input.length);
	return out.result();
}
