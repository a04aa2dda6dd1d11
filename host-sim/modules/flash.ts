// The Moddable "flash" module (ESP32 flavour) over the simulated board's partitions.
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
		callWithData("flash.write", buffer, this.#id, offset, byteLength);
	}
}
