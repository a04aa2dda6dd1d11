// XS parses JSON recursively on the native stack: text from the network is checked for deep nesting before
// JSON.parse sees it, or one message could overflow the stack and crash the device.

/** Whether the arrays and objects in `text` nest at most `maxDepth` deep (brackets inside strings do not count). */
export function nestedWithin(text: string, maxDepth: number): boolean {
	let depth = 0, quoted = false;
	for (let i = 0; i < text.length; i++) {
		const c = text.charCodeAt(i);
		if (quoted) {
			if (c === 0x5c) i++;
			else if (c === 0x22) quoted = false;
		}
		else if (c === 0x22) quoted = true;
		else if (c === 0x5b || c === 0x7b) {
			if (++depth > maxDepth) return false;
		}
		else if (c === 0x5d || c === 0x7d) depth--;
	}
	return true;
}
