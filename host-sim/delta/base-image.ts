// The name esp_delta_ota's framing gives a base: the SHA-256 ESP-IDF appends to an app image (what the device
// compares with its running image's), checked against the image's bytes.

import { createHash } from "node:crypto";
import { chipIdOffset, imageHeaderLength, minScratchLength, readImageLayout, sha256Length } from "../../src/agent/image";

/** The SHA-256 appended to the ESP32 app image at the start of `bytes`, or undefined when it carries none. */
export function appendedSha256(bytes: Uint8Array): Uint8Array | undefined {
	if (bytes.length < imageHeaderLength) return undefined;
	const running = { byteLength: bytes.length, readInto: (offset: number, length: number, into: Uint8Array) => into.set(bytes.subarray(offset, offset + length)) };
	const chipId = bytes[chipIdOffset] | (bytes[chipIdOffset + 1] << 8);
	const layout = readImageLayout(running, chipId, new Uint8Array(minScratchLength));
	if (!layout.ok || !layout.hashed) return undefined;
	const end = layout.imageLength, appended = bytes.slice(end - sha256Length, end);
	const computed = createHash("sha256").update(bytes.subarray(0, end - sha256Length)).digest();
	return computed.equals(appended) ? appended : undefined;
}
