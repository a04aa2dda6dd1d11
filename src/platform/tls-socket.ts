/*
	Moddable's SecureSocket catches its own handshake errors and reports a refused certificate to its client as
	a bare error, the same as a server that cannot be reached. This subclass tells the two apart: a socket whose
	TCP connection was made but whose handshake then ended in an error was refused by TLS (untrusted chain, wrong
	name, expiry, client certificate), which the agent treats as permanent after a few tries.

	It reads two internals of SecureSocket (SDK 8.2.3: `sock`, the TCP socket it wraps, and `handshaking`); where
	they are missing it observes nothing and every failure stays "connection failed".
*/

import SecureSocket from "securesocket";

type SocketCallback = (message: number, value?: unknown) => void;

const connected = 1;

/** A SecureSocket class for one connection; `refused` is called when its handshake fails after connecting. */
export function observedSecureSocket(refused: () => void): typeof SecureSocket {
	return class ObservedSecureSocket extends SecureSocket {
		#tcpConnected = false;
		#client: SocketCallback | undefined;

		constructor(dictionary: Record<string, unknown>) {
			super(dictionary);
			const sock = this.sock, inner = sock?.callback;
			if (!sock || typeof inner !== "function") return;
			sock.callback = (message, value) => {
				if (message === connected) this.#tcpConnected = true;
				inner(message, value);
			};
		}

		// One wrapper per socket, made when the client sets its callback: nothing is allocated per message.
		override set callback(client: SocketCallback | undefined) {
			this.#client = client && ((message, value) => {
				if (message < 0 && this.#tcpConnected && this.handshaking) refused();
				client(message, value);
			});
		}

		override get callback(): SocketCallback | undefined {
			return this.#client;
		}
	};
}
