/*
	Moddable's SecureSocket catches its own handshake errors and reports a refused certificate to its client as
	a bare error, the same as a server that cannot be reached. This subclass tells the two apart: a handshake
	that ends in an error after the server sent bytes (its hello and certificates) was refused by TLS (untrusted
	chain, wrong name, expiry, client certificate), which the agent treats as permanent after a few tries. The
	TCP "connected" message is no proof: on the desktop simulator it also comes for a port nobody listens on.

	It reads two internals of SecureSocket (SDK 8.2.3: `sock`, the TCP socket it wraps, and `handshaking`); where
	they are missing it observes nothing and every failure stays "connection failed".
*/

import SecureSocket from "securesocket";

type SocketCallback = (message: number, value?: unknown) => void;

const readable = 2;

/** A SecureSocket class for one connection; `refused` is called when its handshake fails after the server spoke. */
export function observedSecureSocket(refused: () => void): typeof SecureSocket {
	return class ObservedSecureSocket extends SecureSocket {
		#serverSpoke = false;
		#client: SocketCallback | undefined;

		constructor(dictionary: Record<string, unknown>) {
			super(dictionary);
			const sock = this.sock, inner = sock?.callback;
			if (!sock || typeof inner !== "function") return;
			sock.callback = (message, value) => {
				if (message === readable && (value as number) > 0) this.#serverSpoke = true;
				// Naming sock here keeps it reachable while its own callback runs. SecureSocket and its client
				// close it in there (delete this.sock, delete this.ws); a collection before the callback returns
				// would free it under Moddable's lin socketReadable, which still writes to it (mcsim segfaults).
				inner.call(sock, message, value);
			};
		}

		// One wrapper per socket, made when the client sets its callback: nothing is allocated per message.
		override set callback(client: SocketCallback | undefined) {
			this.#client = client && ((message, value) => {
				if (message < 0 && this.#serverSpoke && this.handshaking) refused();
				client(message, value);
			});
		}

		override get callback(): SocketCallback | undefined {
			return this.#client;
		}
	};
}
