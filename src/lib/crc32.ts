// CRC-32 (IEEE 802.3: reflected, polynomial 0xEDB88320, initial and final value 0xFFFFFFFF).

// Built when the module loads: on the device that is at link time, so the 1 KB table lives in flash, not RAM.
const table = makeTable();

function makeTable(): Uint32Array {
	const result = new Uint32Array(256);
	for (let n = 0; n < 256; n++) {
		let c = n;
		for (let k = 0; k < 8; k++)
			c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
		result[n] = c >>> 0;
	}
	return result;
}

export function crc32(bytes: Uint8Array, start = 0, end = bytes.length): number {
	let crc = 0xffffffff;
	for (let i = start; i < end; i++)
		crc = table[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
	return (crc ^ 0xffffffff) >>> 0;
}
