// UTF-8 without TextEncoder: Moddable has no global one, and records must round-trip any URI verbatim.

export function utf8Length(text: string): number {
	let length = 0;
	for (let i = 0; i < text.length; i++) {
		const c = text.charCodeAt(i);
		if (c < 0x80) length += 1;
		else if (c < 0x800) length += 2;
		else if (c >= 0xd800 && c < 0xdc00 && i + 1 < text.length) { length += 4; i++; }
		else length += 3;
	}
	return length;
}

/** Writes `text` at `at`; returns the offset after it. The caller sized `into` with utf8Length. */
export function utf8Write(text: string, into: Uint8Array, at: number): number {
	for (let i = 0; i < text.length; i++) {
		let c = text.charCodeAt(i);
		if (c >= 0xd800 && c < 0xdc00 && i + 1 < text.length) {
			c = 0x10000 + ((c - 0xd800) << 10) + (text.charCodeAt(++i) - 0xdc00);
			into[at++] = 0xf0 | (c >> 18);
			into[at++] = 0x80 | ((c >> 12) & 0x3f);
			into[at++] = 0x80 | ((c >> 6) & 0x3f);
		}
		else if (c >= 0x800) {
			into[at++] = 0xe0 | (c >> 12);
			into[at++] = 0x80 | ((c >> 6) & 0x3f);
		}
		else if (c >= 0x80)
			into[at++] = 0xc0 | (c >> 6);
		else {
			into[at++] = c;
			continue;
		}
		into[at++] = 0x80 | (c & 0x3f);
	}
	return at;
}

export function utf8Read(bytes: Uint8Array, start: number, end: number): string {
	let text = "";
	for (let i = start; i < end;) {
		const b = bytes[i++];
		let c: number;
		if (b < 0x80) c = b;
		else if (b < 0xe0) c = ((b & 0x1f) << 6) | (bytes[i++] & 0x3f);
		else if (b < 0xf0) { c = ((b & 0x0f) << 12) | ((bytes[i] & 0x3f) << 6) | (bytes[i + 1] & 0x3f); i += 2; }
		else { c = ((b & 0x07) << 18) | ((bytes[i] & 0x3f) << 12) | ((bytes[i + 1] & 0x3f) << 6) | (bytes[i + 2] & 0x3f); i += 3; }
		text += String.fromCodePoint(c > 0x10ffff ? 0xfffd : c);
	}
	return text;
}

/** Whether bytes start..end are well-formed UTF-8 (RFC 3629): no overlong forms, surrogates, code points past
 * U+10FFFF or sequences cut by the end. utf8Read trusts its input: text from a peer is checked with this first. */
export function isWellFormedUtf8(bytes: Uint8Array, start: number, end: number): boolean {
	for (let i = start; i < end;) {
		const b = bytes[i++];
		if (b < 0x80) continue;
		const more = b >= 0xc2 && b <= 0xdf ? 1 : b >= 0xe0 && b <= 0xef ? 2 : b >= 0xf0 && b <= 0xf4 ? 3 : 0;
		if (!more || more > end - i) return false;
		const low = b === 0xe0 ? 0xa0 : b === 0xf0 ? 0x90 : 0x80;
		const high = b === 0xed ? 0x9f : b === 0xf4 ? 0x8f : 0xbf;
		if (bytes[i] < low || bytes[i] > high) return false;
		for (let k = 1; k < more; k++)
			if ((bytes[i + k] & 0xc0) !== 0x80) return false;
		i += more;
	}
	return true;
}
