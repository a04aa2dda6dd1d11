/*
	Makes detools sequential patches (what `detools create_patch` writes and src/delta/ applies), optionally in
	ESP-IDF's esp_delta_ota framing:
	  [framing: u32 0xfccdde10 LE, the base's appended SHA-256, 28 zero bytes]
	  header byte (patch type 0 = sequential in bits 6–4, compression in bits 3–0), the new image's size,
	  for heatshrink one byte (window − 4) << 4 | (lookahead − 3),
	  then the bsdiff stream (bsdiff.ts), compressed.
	A compressed full image is a patch from an empty base.
*/

import { Compression, framingBytes, framingMagic, maxWindowBits } from "../../src/delta/patch-header";
import { ByteWriter } from "./byte-writer";
import { bsdiffStream } from "./bsdiff";
import { crleCompress } from "./crle-encode";
import { heatshrinkCompress } from "./heatshrink-encode";
import { appendedSha256 } from "./base-image";

export type CompressionName = "none" | "crle" | "heatshrink";
export const compressionNames: CompressionName[] = ["none", "crle", "heatshrink"];

export interface PatchOptions {
	/** Default heatshrink, as detools' create_patch. */
	compression?: CompressionName;
	/** heatshrink: log2 of the window, 4 to 12 (the most the device holds; default 8, as detools). */
	windowBits?: number;
	/** heatshrink: log2 of the longest copy, 3 to windowBits − 1 (default 7, as detools). */
	lookaheadBits?: number;
	/** Wrap the patch in ESP-IDF's esp_delta_ota framing, which names the base (its appended SHA-256). */
	framing?: "esp-delta-ota";
}

/** Why these heatshrink parameters cannot be used, or undefined. */
export function heatshrinkProblem(windowBits: number, lookaheadBits: number): string | undefined {
	if (!Number.isInteger(windowBits) || windowBits < 4 || windowBits > maxWindowBits)
		return `the heatshrink window is 4 to ${maxWindowBits} bits (2^${maxWindowBits} is the most the device holds), not ${windowBits}`;
	if (!Number.isInteger(lookaheadBits) || lookaheadBits < 3 || lookaheadBits >= windowBits)
		return `the heatshrink lookahead is 3 to ${windowBits - 1} bits (less than the window's ${windowBits}), not ${lookaheadBits}`;
	return undefined;
}

/** The patch that turns `base` into `next` (which must not be empty: the device refuses an empty image). */
export function createPatch(base: Uint8Array, next: Uint8Array, options: PatchOptions = {}): Uint8Array {
	const { compression = "heatshrink", windowBits = 8, lookaheadBits = 7, framing } = options;
	if (!compressionNames.includes(compression)) throw new Error(`compression is ${compressionNames.join(", ")}, not ${compression}`);
	if (next.length === 0) throw new Error("the new image is empty");
	if (compression === "heatshrink") {
		const problem = heatshrinkProblem(windowBits, lookaheadBits);
		if (problem) throw new Error(problem);
	}
	const out = new ByteWriter(next.length / 4 + 256);
	if (framing === "esp-delta-ota") {
		const sha256 = appendedSha256(base);
		if (!sha256) throw new Error("esp-delta-ota framing names the base by its appended sha-256, and the base image carries none");
		const head = new Uint8Array(framingBytes);
		new DataView(head.buffer).setUint32(0, framingMagic, true);
		head.set(sha256, 4);
		out.bytes(head);
	}
	else if (framing !== undefined) throw new Error(`unknown framing ${framing as string}`);
	out.byte(Compression[compression]);
	out.size(next.length);
	const stream = bsdiffStream(base, next);
	if (compression === "heatshrink") {
		out.byte(((windowBits - 4) << 4) | (lookaheadBits - 3));
		out.bytes(heatshrinkCompress(stream, windowBits, lookaheadBits));
	}
	else out.bytes(compression === "crle" ? crleCompress(stream) : stream);
	return out.result();
}
