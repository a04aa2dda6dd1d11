/*
	A UdpOpener whose sockets speak DTLS (session.ts) to every peer they send to: what goes in and out of
	them is the application's plaintext datagrams, so the CoAP endpoint runs over it unchanged (coaps://).

	The first datagram to a peer starts a session and waits, with the few that follow it (CoAP's own
	retransmissions), until the handshake is done; a failed session drops them and tells the handler
	(`failed`, a "dtls: " reason) so that what waits on that peer fails at once, with the reason. The next
	datagram to that peer starts a new session. Sessions are bounded (maxPeers, the oldest closed first).
*/

import type { Clock, DtlsCrypto, Logger, UdpHandler, UdpOpener, UdpSocket } from "../platform/ports";
import { dtlsReasons } from "../lib/tls-failure";
import { DtlsSession, type DtlsOptions, type PskCredentials } from "./session";

export interface DtlsPorts {
	udp: UdpOpener;
	crypto: DtlsCrypto;
	clock: Clock;
	log: Logger;
	/** The PSK identity and key, looked up when a session starts (never logged); undefined when none is provisioned. */
	credentials(): PskCredentials | undefined;
}

const maxPeers = 2;
const maxWaiting = 4;

interface Peer {
	address: string;
	port: number;
	session: DtlsSession;
	waiting: Uint8Array[];
}

class DtlsSocket implements UdpSocket {
	readonly #ports: DtlsPorts;
	readonly #options: DtlsOptions;
	readonly #handler: UdpHandler;
	readonly #socket: UdpSocket;
	readonly #peers = new Map<string, Peer>();
	#closed = false;

	constructor(ports: DtlsPorts, options: DtlsOptions, localPort: number, handler: UdpHandler) {
		this.#ports = ports;
		this.#options = options;
		this.#handler = handler;
		this.#socket = ports.udp.open(localPort, {
			received: (packet, address, port) => this.#peers.get(`${address}:${port}`)?.session.receive(new Uint8Array(packet)),
		});
	}

	send(address: string, port: number, packet: Uint8Array, length: number): void {
		if (this.#closed) return;
		const peer = this.#peers.get(`${address}:${port}`) ?? this.#start(address, port);
		if (!peer) return;
		if (peer.session.connected) {
			peer.session.send(packet, length);
			return;
		}
		if (peer.waiting.length === maxWaiting) peer.waiting.shift();
		peer.waiting.push(packet.slice(0, length));
	}

	close(): void {
		this.#closed = true;
		for (const peer of this.#peers.values()) peer.session.close();
		this.#peers.clear();
		this.#socket.close();
	}

	#start(address: string, port: number): Peer | undefined {
		const key = `${address}:${port}`;
		const credentials = this.#ports.credentials();
		if (!credentials) {
			// Told from a timer: the sender is still in the middle of its send.
			this.#ports.clock.setTimeout(() => this.#failed(address, port, dtlsReasons.noPsk), 0);
			return undefined;
		}
		if (this.#peers.size === maxPeers) {
			const [oldest, peer] = this.#peers.entries().next().value!;
			peer.session.close();
			this.#peers.delete(oldest);
		}
		const session: DtlsSession = new DtlsSession({
			crypto: this.#ports.crypto, clock: this.#ports.clock, log: this.#ports.log,
			send: (datagram, length) => this.#socket.send(address, port, datagram, length),
		}, this.#options, credentials, {
			connected: () => {
				const current = this.#peers.get(key);
				if (current?.session !== session) return;
				for (const datagram of current.waiting) session.send(datagram, datagram.length);
				current.waiting = [];
			},
			data: (plaintext) => this.#handler.received(plaintext.slice().buffer, address, port),
			failed: (reason) => {
				if (this.#peers.get(key)?.session === session) this.#peers.delete(key);
				this.#failed(address, port, reason);
			},
		});
		const peer: Peer = { address, port, session, waiting: [] };
		this.#peers.set(key, peer);
		session.start();
		return peer;
	}

	#failed(address: string, port: number, reason: string): void {
		if (this.#closed) return;
		this.#ports.log(`${reason} (${address}:${port})`);
		this.#handler.failed?.(address, port, reason);
	}
}

export class DtlsUdpOpener implements UdpOpener {
	readonly #ports: DtlsPorts;
	readonly #options: DtlsOptions;

	constructor(ports: DtlsPorts, options: DtlsOptions) {
		this.#ports = ports;
		this.#options = options;
	}

	open(localPort: number, handler: UdpHandler): UdpSocket {
		return new DtlsSocket(this.#ports, this.#options, localPort, handler);
	}

	resolve(host: string, answer: (address: string | undefined) => void): void {
		this.#ports.udp.resolve(host, answer);
	}
}
