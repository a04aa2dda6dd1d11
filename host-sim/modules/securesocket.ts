// Moddable's SecureSocket, as the device names it: the Request and Client emulations see it as their
// `Socket` and let the board's sockets speak TLS (Node's tls) with the `secure` dictionary's options. They never
// construct it, so the subclass the device makes (src/platform/tls-socket.ts) observes nothing here: the board
// passes the handshake's reason itself.
type SocketCallback = (message: number, value?: unknown) => void;

export default class SecureSocket {
	#callback: SocketCallback | undefined;
	get callback(): SocketCallback | undefined {
		return this.#callback;
	}
	set callback(client: SocketCallback | undefined) {
		this.#callback = client;
	}
	sock: { callback: SocketCallback | undefined } | undefined;
	handshaking?: boolean;
	constructor(_dictionary: Record<string, unknown>) {}
}
