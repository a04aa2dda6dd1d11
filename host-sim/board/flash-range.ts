// Which flash ranges a partition accepts. Pure, so that the flash and FFI modules inside the engine can apply
// the chip's rules before they send a write or an erase along with a later call (host-sim/engines/xs.ts).

export const sectorSize = 4096;
const espErrInvalidArg = 0x102;
const espErrInvalidSize = 0x104;

export function inPartition(offset: number, byteLength: number, partitionBytes: number): boolean {
	return Number.isInteger(offset) && Number.isInteger(byteLength) && offset >= 0 && byteLength >= 0
		&& offset + byteLength <= partitionBytes;
}

/** esp_partition_erase_range's check of its arguments: 0, or the error it returns. Offset and length are whole sectors. */
export function eraseRangeError(offset: unknown, byteLength: unknown, partitionBytes: number): number {
	if (!Number.isInteger(offset) || !Number.isInteger(byteLength)) return espErrInvalidArg;
	const start = offset as number, end = start + (byteLength as number);
	if (start < 0 || end < start || start % sectorSize || end % sectorSize) return espErrInvalidArg;
	return end > partitionBytes ? espErrInvalidSize : 0;
}
