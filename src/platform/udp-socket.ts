// The UdpOpener port over Moddable's "socket" module (a UDP Socket: write(address, port, buffer), data read
// inside its callback) and "net" (Net.resolve for host names).

import { Socket } from "socket";
import Net from "net";
import type { UdpHandler, UdpOpener, UdpSocket } from "./ports";

const dataReceived = 2;

class ModdableUdpSocket implements UdpSocket {
	#socket: Socket | undefined;

	constructor(localPort: number, handler: UdpHandler) {
		const socket = new Socket(localPort ? { kind: "UDP", port: localPort } : { kind: "UDP" });
		socket.callback = function (message: number, _byteLength?: number, address?: string, port?: number) {
			if (message === dataReceived) handler.received(this.read(ArrayBuffer), address!, port!);
		};
		this.#socket = socket;
	}

	send(address: string, port: number, packet: Uint8Array, length: number): void {
		// write() sends a whole ArrayBuffer: the datagram needs one of its exact length.
		this.#socket?.write(address, port, (packet.buffer as ArrayBuffer).slice(packet.byteOffset, packet.byteOffset + length));
	}

	close(): void {
		this.#socket?.close();
		this.#socket = undefined;
	}
}

export const udp: UdpOpener = {
	open: (localPort, handler) => new ModdableUdpSocket(localPort, handler),
	resolve(host, answer) {
		// A fresh RegExp per call, not a module constant (a preloaded RegExp: see agent/url.ts).
		if (/^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)) return answer(host);
		Net.resolve(host, (_name, address) => answer(address));
	},
};
