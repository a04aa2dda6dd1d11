// The Moddable "socket" module, UDP only, over the board's UDP sockets: the callback gets message 2 with the
// datagram's length, sender address and port, and reads the datagram with read(ArrayBuffer) inside it.
import { call, callWithData, listen, unlisten } from "./host";

const dataReceived = 2;

interface SocketDictionary {
	kind?: string;
	port?: number;
}

export class Socket {
	callback: ((this: Socket, message: number, byteLength?: number, address?: string, port?: number) => void) | undefined;
	#id: number;
	#datagram: ArrayBuffer | undefined;

	constructor(dictionary: SocketDictionary) {
		if (dictionary.kind !== "UDP") throw new Error("only UDP sockets are simulated");
		this.#id = call("udp.open", dictionary.port ?? 0);
		listen(this.#id, (event: { address: string; port: number }, data) => {
			this.#datagram = data ?? new ArrayBuffer(0);
			try {
				this.callback?.(dataReceived, this.#datagram.byteLength, event.address, event.port);
			}
			finally {
				this.#datagram = undefined;
			}
		});
	}

	read(type?: typeof ArrayBuffer): any {
		const datagram = this.#datagram;
		if (type === undefined) return datagram?.byteLength ?? 0;
		if (!datagram) throw new Error("nothing to read");
		this.#datagram = undefined;
		return datagram;
	}

	write(address: string, port: number, data: ArrayBuffer): void {
		callWithData("udp.send", data, this.#id, address, port);
	}

	close(): void {
		unlisten(this.#id);
		call("udp.close", this.#id);
	}
}
