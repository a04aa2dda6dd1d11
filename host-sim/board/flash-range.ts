// Which flash ranges a partition accepts. Pure, so that the flash module inside the engine can apply the
// chip's rule before it sends a write along with a later call (host-sim/engines/xs.ts).

export function inPartition(offset: number, byteLength: number, partitionBytes: number): boolean {
	return Number.isInteger(offset) && Number.isInteger(byteLength) && offset >= 0 && byteLength >= 0
		&& offset + byteLength <= partitionBytes;
}
