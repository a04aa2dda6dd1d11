// The Moddable "flash" module (ESP32 flavour) over the simulated board's partitions.
import { inPartition } from "../board/flash-range";
import { call, callWithData } from "./host";

export default class Flash {
	#id: number;
	readonly byteLength: number;
	readonly blockSize: number;

	constructor(partition: string) {
		const opened = call("flash.open", partition);
		this.#id = opened.id;
		this.byteLength = opened.byteLength;
		this.blockSize = opened.blockSize;
	}

	erase(sector: number): void {
		call("flash.erase", this.#id, sector);
	}

	read(offset: number, byteLength: number): ArrayBuffer {
		return call("flash.read", this.#id, offset, byteLength);
	}

	write(offset: number, byteLength: number, buffer: ArrayBuffer): void {
		// Checked here as the board checks them: the xs engine sends a write along with the next call that needs an
		// answer, so the device must hear of bad arguments now; on the board only a power cut can fail it then.
		if (!inPartition(offset, byteLength, this.byteLength) || buffer.byteLength < byteLength) throw new Error("write failed");
		// Only the bytes written go to the board: the caller's buffer is often a larger scratch.
		callWithData("flash.write", new Uint8Array(buffer, 0, byteLength), this.#id, offset, byteLength);
	}
}
