// The TLS 1.2 PRF (RFC 5246 §5): P_SHA256(secret, label + seed), as long as `into`.

import { HmacSha256, macBytes } from "./hmac";

const labelBytes = (label: string) => Uint8Array.from(label, (c) => c.charCodeAt(0));
const labels = new Map<string, Uint8Array>();

export function prf(hmac: HmacSha256, secret: Uint8Array, label: string, seeds: Uint8Array[], into: Uint8Array): void {
	let prefix = labels.get(label);
	if (!prefix) labels.set(label, prefix = labelBytes(label));
	hmac.setKey(secret);
	const a = new Uint8Array(macBytes), block = new Uint8Array(macBytes);
	// A(1) = HMAC(secret, label + seed); A(i) = HMAC(secret, A(i-1)).
	hmac.start();
	hmac.write(prefix);
	for (const seed of seeds) hmac.write(seed);
	hmac.finish(a);
	for (let offset = 0; offset < into.length; offset += macBytes) {
		hmac.start();
		hmac.write(a);
		hmac.write(prefix);
		for (const seed of seeds) hmac.write(seed);
		hmac.finish(block);
		into.set(block.subarray(0, Math.min(macBytes, into.length - offset)), offset);
		hmac.start();
		hmac.write(a);
		hmac.finish(a);
	}
}
