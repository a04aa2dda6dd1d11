// CoAP option values shared by the LwM2M server and the package server.

/** A uint option value in the fewest bytes, 0 as no bytes at all (RFC 7252 §3.2). */
export function uintOption(value: number): Buffer {
	const bytes: number[] = [];
	for (let rest = value; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest % 256);
	return Buffer.from(bytes);
}
